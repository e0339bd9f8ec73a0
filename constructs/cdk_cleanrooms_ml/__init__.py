"""cdk-cleanrooms-ml: AWS Clean Rooms ML audience generation jobs as AWS CDK constructs.

``AudienceGenerationJob`` starts a job from a seed audience during ``cdk deploy``, waits for it,
and deletes it with the stack. See the README for the lifecycle and the security model.
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # type checkers and IDEs see the names; at run time they are imported on first use
    from . import seed_roles
    from .association import ConfiguredAudienceModelAssociation
    from .audience_model import AudienceModel
    from .configured_model import AudienceSizeConfig, AudienceSizeType, ConfiguredAudienceModel, SharedAudienceMetrics
    from .destination import AudienceDestination
    from .export_job import AudienceExportJob, AudienceSize
    from .job import RESOURCE_TYPE, AudienceGenerationJob, IAudienceGenerationJob
    from .provider import AudienceGenerationProvider, CleanRoomsMlProvider
    from .seed_audience import (
        S3DataSource,
        SeedAudience,
        SqlParameters,
        WorkerComputeConfiguration,
        WorkerComputeType,
    )
    from .seed_roles import (
        grant_protected_query,
        grant_seed_read,
        protected_query_statements,
        seed_read_statements,
        seed_role_for_bucket,
        seed_role_for_sql,
        seed_role_principal,
    )
    from .training_dataset import Column, ColumnType, TrainingDataset
    from .training_roles import training_data_statements
    from .validation import ValidationError

__version__ = "0.1.0"

__all__ = [
    "RESOURCE_TYPE",
    "AudienceDestination",
    "AudienceExportJob",
    "AudienceGenerationJob",
    "AudienceGenerationProvider",
    "AudienceModel",
    "AudienceSize",
    "AudienceSizeConfig",
    "AudienceSizeType",
    "CleanRoomsMlProvider",
    "Column",
    "ColumnType",
    "ConfiguredAudienceModel",
    "ConfiguredAudienceModelAssociation",
    "IAudienceGenerationJob",
    "S3DataSource",
    "SeedAudience",
    "SharedAudienceMetrics",
    "SqlParameters",
    "TrainingDataset",
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
    "training_data_statements",
]

#: The module each public name lives in. Importing aws-cdk-lib starts Node.js (jsii), so the package loads it
#: only when a construct is first asked for: ``python -m cdk_cleanrooms_ml.rehearsal --help`` answers without it.
_MODULE_OF = {
    "RESOURCE_TYPE": "job",
    "AudienceDestination": "destination",
    "AudienceExportJob": "export_job",
    "AudienceModel": "audience_model",
    "AudienceSize": "export_job",
    "AudienceSizeConfig": "configured_model",
    "AudienceSizeType": "configured_model",
    "CleanRoomsMlProvider": "provider",
    "ConfiguredAudienceModel": "configured_model",
    "ConfiguredAudienceModelAssociation": "association",
    "SharedAudienceMetrics": "configured_model",
    "AudienceGenerationJob": "job",
    "IAudienceGenerationJob": "job",
    "AudienceGenerationProvider": "provider",
    "S3DataSource": "seed_audience",
    "SeedAudience": "seed_audience",
    "SqlParameters": "seed_audience",
    "WorkerComputeConfiguration": "seed_audience",
    "WorkerComputeType": "seed_audience",
    "Column": "training_dataset",
    "ColumnType": "training_dataset",
    "TrainingDataset": "training_dataset",
    "training_data_statements": "training_roles",
    "ValidationError": "validation",
    "seed_roles": "seed_roles",
    "grant_protected_query": "seed_roles",
    "grant_seed_read": "seed_roles",
    "protected_query_statements": "seed_roles",
    "seed_read_statements": "seed_roles",
    "seed_role_for_bucket": "seed_roles",
    "seed_role_for_sql": "seed_roles",
    "seed_role_principal": "seed_roles",
}


def __getattr__(name: str) -> Any:
    if name not in _MODULE_OF:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    module = import_module(f".{_MODULE_OF[name]}", __name__)
    value = module if name == _MODULE_OF[name] else getattr(module, name)
    globals()[name] = value  # the next lookup is a plain attribute
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
