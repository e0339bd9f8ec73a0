"""A local rehearsal of a deploy: a simulated Clean Rooms ML endpoint and a CloudFormation + Provider framework driver.

Nothing here talks to AWS. ``endpoint.Endpoint`` plays the service; ``driver`` runs the handlers from a
synthesized cloud assembly the way CloudFormation and the CDK Provider framework would. Run
``python -m cdk_cleanrooms_ml.rehearsal --cdk-out cdk.out`` to watch a whole lifecycle.
"""

from __future__ import annotations

from .endpoint import Endpoint

__all__ = ["Endpoint"]
