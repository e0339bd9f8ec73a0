"""Seed roles: trust with the confused-deputy conditions, read on exactly the seed, KMS only when encrypted."""

from __future__ import annotations

from typing import Any

import pytest
from aws_cdk import App, Environment, Stack
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_s3 as s3
from aws_cdk.assertions import Template

from cdk_cleanrooms_ml import AudienceGenerationJob, S3DataSource, SeedAudience, seed_roles
from tests.helpers import ACCOUNT, COLLABORATION_ID, MODEL_ARN, REGION, job

MEMBERSHIP_ARN = f"arn:aws:cleanrooms:{REGION}:{ACCOUNT}:membership/{COLLABORATION_ID}"


def new_stack() -> Stack:
    return Stack(App(), "Seeds", env=Environment(account=ACCOUNT, region=REGION))


def roles(stack: Stack) -> dict[str, Any]:
    found: dict[str, Any] = Template.from_stack(stack).find_resources("AWS::IAM::Role")
    return found


def role_constructs(stack: Stack) -> list[iam.Role]:
    """The roles in the tree (without synthesizing it)."""
    return [c for c in stack.node.find_all() if isinstance(c, iam.Role)]


def statements(role: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {s["Sid"]: s for p in role["Properties"].get("Policies", []) for s in p["PolicyDocument"]["Statement"]}


def test_from_bucket_creates_the_documented_seed_role_for_one_object() -> None:
    stack = new_stack()
    bucket = s3.Bucket(stack, "Bucket")
    seed = SeedAudience.from_bucket(bucket, key="seed/users.jsonl")
    assert seed.makes_role and not role_constructs(stack)  # made when a job uses the seed, in the job's stack
    seed = seed.bound(stack)
    bucket_arn = stack.resolve(bucket.bucket_arn)
    assert stack.resolve(seed.data_source.s3_uri if seed.data_source else None) == {
        "Fn::Join": ["", ["s3://", stack.resolve(bucket.bucket_name), "/seed/users.jsonl"]]
    }
    ((logical_id, role),) = roles(stack).items()
    assert logical_id.startswith(seed_roles.SEED_ROLE_ID_PREFIX)
    assert stack.resolve(seed.role_arn) == {"Fn::GetAtt": [logical_id, "Arn"]}
    (trust,) = role["Properties"]["AssumeRolePolicyDocument"]["Statement"]
    assert trust["Principal"] == {"Service": "cleanrooms-ml.amazonaws.com"}
    assert trust["Condition"]["StringEqualsIfExists"] == {"aws:SourceAccount": ACCOUNT}
    source_arn = trust["Condition"]["ArnLikeIfExists"]["aws:SourceArn"]
    assert source_arn["Fn::Join"][1][-1] == f":cleanrooms-ml:{REGION}:{ACCOUNT}:audience-generation-job/*"
    granted = statements(role)
    assert set(granted) == {"ReadSeedObjects", "ListSeedBucket"}  # not encrypted with KMS: no key statements
    read, listing = granted["ReadSeedObjects"], granted["ListSeedBucket"]
    assert read["Action"] == "s3:GetObject"
    assert read["Resource"] == {"Fn::Join": ["", [bucket_arn, "/seed/users.jsonl"]]}
    assert read["Condition"] == {"StringEquals": {"s3:ResourceAccount": ACCOUNT}}
    assert listing["Action"] == "s3:ListBucket"
    assert listing["Resource"] == bucket_arn
    # As the user guide has it: no s3:prefix condition nobody here could test against the service's calls.
    assert listing["Condition"] == {"StringEquals": {"s3:ResourceAccount": ACCOUNT}}
    assert not Template.from_stack(stack).find_resources("AWS::IAM::Policy")  # one resource per seed role


def test_a_prefix_reads_the_objects_under_it_and_a_kms_bucket_adds_decrypt_for_the_seed() -> None:
    stack = new_stack()
    key = kms.Key(stack, "Key")
    bucket = s3.Bucket(stack, "Bucket", encryption_key=key)
    seed = SeedAudience.from_bucket(bucket, prefix="seeds/2026/").bound(stack)
    assert stack.resolve(seed.data_source.s3_uri if seed.data_source else None)["Fn::Join"][1][-1] == "/seeds/2026/"
    ((_id, role),) = roles(stack).items()
    granted = statements(role)
    assert granted["ReadSeedObjects"]["Resource"]["Fn::Join"][1][-1] == "/seeds/2026/*"
    decrypt = granted["DecryptSeedObjects"]
    assert decrypt["Action"] == "kms:Decrypt"
    assert decrypt["Resource"] == stack.resolve(key.key_arn)
    context = decrypt["Condition"]["StringLike"]["kms:EncryptionContext:aws:s3:arn"]
    assert context[0]["Fn::Join"][1][-1] == "/seeds/2026/*"
    assert context[1] == stack.resolve(bucket.bucket_arn)  # S3 Bucket Keys use the bucket's ARN
    assert set(decrypt["Condition"]) == {"StringLike"}  # no kms:ViaService: the user guide has none
    assert granted["DescribeSeedKey"]["Action"] == "kms:DescribeKey"


def test_an_imported_bucket_takes_its_key_and_owner_account() -> None:
    stack = new_stack()
    bucket = s3.Bucket.from_bucket_name(stack, "Theirs", "partner-seeds")
    key_arn = f"arn:aws:kms:{REGION}:444455556666:key/1234abcd-12ab-34cd-56ef-1234567890ab"
    seed = SeedAudience.from_bucket(bucket, key="s.jsonl", encryption_key=key_arn, bucket_owner="444455556666")
    ((_id, role),) = roles(new_or(stack, seed)).items()
    granted = statements(role)
    assert granted["ReadSeedObjects"]["Condition"] == {"StringEquals": {"s3:ResourceAccount": "444455556666"}}
    assert granted["DecryptSeedObjects"]["Resource"] == key_arn
    assert granted["DescribeSeedKey"]["Resource"] == key_arn


def new_or(stack: Stack, seed: SeedAudience) -> Stack:
    seed.bound(stack)
    return stack


def test_the_seed_role_is_made_in_the_jobs_stack_not_in_the_buckets() -> None:
    app = App()
    env = Environment(account=ACCOUNT, region=REGION)
    data, jobs = Stack(app, "Data", env=env), Stack(app, "Jobs", env=env)
    bucket = s3.Bucket(data, "Bucket")
    seed = SeedAudience.from_bucket(bucket, key="seed.jsonl")
    AudienceGenerationJob(jobs, "Lookalike", configured_audience_model_arn=MODEL_ARN, seed_audience=seed)
    assert roles(data) == {}
    assert len([k for k in roles(jobs) if k.startswith(seed_roles.SEED_ROLE_ID_PREFIX)]) == 1


def test_the_same_seed_gets_the_same_role_and_another_seed_another() -> None:
    stack = new_stack()
    bucket = s3.Bucket(stack, "Bucket")
    first = SeedAudience.from_bucket(bucket, key="a.jsonl").bound(stack)
    again = SeedAudience.from_bucket(bucket, key="a.jsonl").bound(stack)
    other = SeedAudience.from_bucket(bucket, key="b.jsonl").bound(stack)
    assert first.role is again.role
    assert first.role is not other.role
    assert len(roles(stack)) == 2


def test_a_role_of_the_app_is_granted_the_read_and_an_imported_one_is_left_alone() -> None:
    stack = new_stack()
    bucket = s3.Bucket(stack, "Bucket")
    mine = iam.Role(stack, "Mine", assumed_by=iam.ServicePrincipal("cleanrooms-ml.amazonaws.com"))
    imported = iam.Role.from_role_arn(stack, "Imported", f"arn:aws:iam::{ACCOUNT}:role/theirs")
    frozen = iam.Role.from_role_arn(stack, "Frozen", f"arn:aws:iam::{ACCOUNT}:role/frozen", mutable=False)
    assert SeedAudience.from_bucket(bucket, key="k.jsonl", role=mine).role is mine
    assert SeedAudience.from_bucket(bucket, key="k.jsonl", role=imported).role is imported
    assert (
        SeedAudience.from_bucket(bucket, key="k.jsonl", role=frozen).role_arn == f"arn:aws:iam::{ACCOUNT}:role/frozen"
    )
    policies = Template.from_stack(stack).find_resources("AWS::IAM::Policy")
    ((_id, policy),) = policies.items()  # only Mine got a policy; nothing attached to imported roles
    assert policy["Properties"]["Roles"] == [stack.resolve(mine.role_name)]
    actions = sorted(s["Action"] for s in policy["Properties"]["PolicyDocument"]["Statement"])
    assert actions == ["s3:GetObject", "s3:ListBucket"]
    assert set(roles(stack)) == {k for k in roles(stack) if k.startswith("Mine")}  # no seed role was created


@pytest.mark.parametrize(
    ("kwargs", "words"),
    [
        ({}, "exactly one of `key`"),
        ({"key": "a", "prefix": "b/"}, "exactly one of `key`"),
        ({"key": ""}, "non-empty"),
        ({"key": "/abs.jsonl"}, "must not start with '/'"),
        ({"prefix": "seeds/*"}, "wildcards"),
    ],
)
def test_from_bucket_needs_exactly_one_plain_location(kwargs: dict[str, Any], words: str) -> None:
    stack = new_stack()
    bucket = s3.Bucket(stack, "Bucket")
    with pytest.raises(ValueError) as raised:
        SeedAudience.from_bucket(bucket, **kwargs)
    assert words in str(raised.value)
    assert roles(stack) == {}


def test_from_sql_grants_the_protected_query_permissions_scoped_to_the_membership() -> None:
    stack = new_stack()
    seed = SeedAudience.from_sql(
        scope=stack, membership_arn=MEMBERSHIP_ARN, query_string="SELECT user_id FROM t", parameters={"c": "x"}
    )
    assert seed.sql_parameters is not None and seed.sql_parameters.query_string == "SELECT user_id FROM t"
    again = SeedAudience.from_sql(scope=stack, membership_arn=MEMBERSHIP_ARN, analysis_template_arn="arn:t")
    assert again.role is seed.role
    ((_id, role),) = roles(stack).items()
    granted = statements(role)
    assert granted["FollowProtectedQueriesOfMembership"]["Resource"] == MEMBERSHIP_ARN
    assert sorted(granted["FollowProtectedQueriesOfMembership"]["Action"]) == [
        "cleanrooms:GetProtectedQuery",
        "cleanrooms:UpdateProtectedQuery",
    ]
    assert "cleanrooms:StartProtectedQuery" in granted["StartProtectedQueries"]["Action"]
    assert role["Metadata"]["checkov"]["skip"][0]["id"] == "CKV_AWS_111"


def test_from_sql_makes_its_role_in_the_jobs_stack_or_grants_a_role_of_the_app_in_its_own_policy() -> None:
    stack = new_stack()
    deferred = SeedAudience.from_sql(membership_arn=MEMBERSHIP_ARN, query_string="SELECT 1")
    assert deferred.makes_role and not role_constructs(stack)
    with pytest.raises(ValueError, match="made when a job uses this seed"):
        _ = deferred.role_arn
    assert deferred.bound(stack).role is not None and len(roles(stack)) == 1
    stack = new_stack()
    mine = iam.Role(stack, "Mine", assumed_by=iam.ServicePrincipal("cleanrooms-ml.amazonaws.com"))
    imported = iam.Role.from_role_arn(stack, "Imported", f"arn:aws:iam::{ACCOUNT}:role/theirs")
    SeedAudience.from_sql(membership_arn=MEMBERSHIP_ARN, query_string="SELECT 1", role=mine)
    SeedAudience.from_sql(membership_arn=MEMBERSHIP_ARN, query_string="SELECT 2", role=mine)  # same policy
    SeedAudience.from_sql(membership_arn=MEMBERSHIP_ARN, query_string="SELECT 1", role=imported)
    policies = Template.from_stack(stack).find_resources("AWS::IAM::Policy")
    ((policy_id, _policy),) = policies.items()
    assert policy_id.startswith("MineCleanRoomsMlProtectedQuery")
    assert seed_roles.grant_protected_query(imported, MEMBERSHIP_ARN) is False


def test_a_job_takes_an_imported_role_whatever_jsii_object_carries_it() -> None:
    stack = new_stack()
    arns = {}
    for index, mutable in enumerate((True, False)):  # mutable=False gives a jsii proxy, not a Python class
        arns[f"Job{index}"] = arn = f"arn:aws:iam::{ACCOUNT}:role/imported-{index}"
        role = iam.Role.from_role_arn(stack, f"Imported{index}", arn, mutable=mutable)
        job(stack, f"Job{index}", seed_audience=SeedAudience(role=role, data_source=S3DataSource(s3_uri="s3://b/k")))
    jobs = Template.from_stack(stack).find_resources("Custom::CleanRoomsMlAudienceGenerationJob")
    assert {k[:4]: r["Properties"]["seedAudience"]["roleArn"] for k, r in jobs.items()} == arns
