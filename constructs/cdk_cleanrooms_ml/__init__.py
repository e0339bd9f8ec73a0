"""cdk-cleanrooms-ml: AWS Clean Rooms ML audience generation jobs as AWS CDK constructs.

``AudienceGenerationJob`` starts a job from a seed audience during ``cdk deploy``, waits for it,
and deletes it with the stack. See the README for the lifecycle and the security model.
"""

from . import seed_roles
from .job import RESOURCE_TYPE, AudienceGenerationJob, IAudienceGenerationJob
from .provider import AudienceGenerationProvider
from .seed_audience import S3DataSource, SeedAudience, SqlParameters, WorkerComputeConfiguration, WorkerComputeType
from .seed_roles import (
    grant_protected_query,
    grant_seed_read,
    protected_query_statements,
    seed_read_statements,
    seed_role_for_bucket,
    seed_role_for_sql,
    seed_role_principal,
)
from .validation import ValidationError

__version__ = "0.1.0"

__all__ = [
    "RESOURCE_TYPE",
    "AudienceGenerationJob",
    "AudienceGenerationProvider",
    "IAudienceGenerationJob",
    "S3DataSource",
    "SeedAudience",
    "SqlParameters",
    "ValidationError",
    "WorkerComputeConfiguration",
    "WorkerComputeType",
    "__version__",
    "grant_protected_query",
    "grant_seed_read",
    "protected_query_statements",
    "seed_read_statements",
    "seed_role_for_bucket",
    "seed_role_for_sql",
    "seed_role_principal",
    "seed_roles",
]
