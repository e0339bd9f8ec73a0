"""cdk-cleanrooms-ml: AWS Clean Rooms ML audience generation jobs as AWS CDK constructs.

``AudienceGenerationJob`` starts a job from a seed audience during ``cdk deploy``, waits for it,
and deletes it with the stack. See the README for the lifecycle and the security model.
"""

from .job import RESOURCE_TYPE, AudienceGenerationJob
from .provider import AudienceGenerationProvider
from .seed_audience import S3DataSource, SeedAudience, SqlParameters, WorkerComputeConfiguration, WorkerComputeType
from .validation import ValidationError

__version__ = "0.1.0"

__all__ = [
    "RESOURCE_TYPE",
    "AudienceGenerationJob",
    "AudienceGenerationProvider",
    "S3DataSource",
    "SeedAudience",
    "SqlParameters",
    "ValidationError",
    "WorkerComputeConfiguration",
    "WorkerComputeType",
    "__version__",
]
