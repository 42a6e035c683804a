"""infra/dxtrack.yaml, read as plain YAML, its parameters, rules, conditions and intrinsic
functions resolved, and turned into the boto3 calls CloudFormation would make (moto's
CloudFormation skips Firehose and Glue, so the tests make the calls themselves; botocore still
checks every parameter's shape)."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import boto3
import yaml

TEMPLATE = Path(__file__).resolve().parents[1] / "infra" / "dxtrack.yaml"
ACCOUNT = "123456789012"  # moto's default account
REGION = "eu-west-1"


def load() -> dict[str, Any]:
    return yaml.safe_load(TEMPLATE.read_text())


NO_VALUE = object()


class RuleFailed(ValueError):
    """A template rule refused the parameters, as CloudFormation would before creating anything."""


class Stack:
    """The template with parameter values: its Rules checked, its Conditions evaluated (resources
    whose condition is false are left out), and Ref, Fn::Sub, Fn::GetAtt, Fn::If, Fn::FindInMap
    and AWS::NoValue resolved."""

    def __init__(self, template: dict[str, Any], parameters: dict[str, str]) -> None:
        self.template = template
        self.values: dict[str, Any] = {
            "AWS::AccountId": ACCOUNT,
            "AWS::Region": REGION,
            "AWS::Partition": "aws",
        }
        for name, spec in template["Parameters"].items():
            raw = parameters.get(name, spec.get("Default"))
            if "AllowedValues" in spec and raw not in spec["AllowedValues"]:
                raise ValueError(f"{name}={raw!r} is not one of {spec['AllowedValues']}")
            self.values[name] = int(raw) if spec["Type"] == "Number" else raw
        self.conditions = {
            name: bool(self.resolve(expr)) for name, expr in template.get("Conditions", {}).items()
        }
        for name, rule in template.get("Rules", {}).items():
            if "RuleCondition" in rule and not self.resolve(rule["RuleCondition"]):
                continue
            for assertion in rule["Assertions"]:
                if not self.resolve(assertion["Assert"]):
                    raise RuleFailed(f"{name}: {assertion['AssertDescription']}")
        self.resources: dict[str, Any] = {
            name: spec
            for name, spec in template["Resources"].items()
            if "Condition" not in spec or self.conditions[spec["Condition"]]
        }
        self.ids: dict[str, str] = {}
        self.attrs: dict[tuple[str, str], str] = {}
        self._name_resources()

    def _name_resources(self) -> None:
        r = self.resources
        bucket = self.resolve(r["DataBucket"]["Properties"]["BucketName"])
        self.ids["DataBucket"] = bucket
        self.attrs[("DataBucket", "Arn")] = f"arn:aws:s3:::{bucket}"
        group = self.resolve(r["DeliveryLogGroup"]["Properties"]["LogGroupName"])
        self.ids["DeliveryLogGroup"] = group
        self.attrs[("DeliveryLogGroup", "Arn")] = (
            f"arn:aws:logs:{REGION}:{ACCOUNT}:log-group:{group}:*"
        )
        for stream in ("ErrorDeliveryLogStream", "MetricDeliveryLogStream"):
            self.ids[stream] = r[stream]["Properties"]["LogStreamName"]
        role = f"dxtrack-firehose-{self.values['Stage']}"
        self.ids["FirehoseDeliveryRole"] = role
        self.attrs[("FirehoseDeliveryRole", "Arn")] = f"arn:aws:iam::{ACCOUNT}:role/{role}"
        for stream in ("ErrorStream", "MetricStream"):
            name = self.resolve(r[stream]["Properties"]["DeliveryStreamName"])
            self.ids[stream] = name
            self.attrs[(stream, "Arn")] = (
                f"arn:aws:firehose:{REGION}:{ACCOUNT}:deliverystream/{name}"
            )
        topic = self.resolve(r["AlarmTopic"]["Properties"]["TopicName"])
        self.ids["AlarmTopic"] = f"arn:aws:sns:{REGION}:{ACCOUNT}:{topic}"  # Ref gives the ARN
        for table in ("ErrorTable", "MetricTable"):
            self.ids[table] = r[table]["Properties"]["TableInput"]["Name"]
        self.ids["GlueDatabase"] = self.resolve(
            r["GlueDatabase"]["Properties"]["DatabaseInput"]["Name"]
        )

    def resolve(self, node: Any) -> Any:
        if isinstance(node, list):
            return [v for v in (self.resolve(item) for item in node) if v is not NO_VALUE]
        if not isinstance(node, dict):
            return node
        if set(node) == {"Ref"}:
            name = node["Ref"]
            if name == "AWS::NoValue":
                return NO_VALUE
            return self.values[name] if name in self.values else self.ids[name]
        if set(node) == {"Fn::Equals"}:
            left, right = self.resolve(node["Fn::Equals"])
            return left == right
        if set(node) == {"Fn::Not"}:
            return not self.resolve(node["Fn::Not"][0])
        if set(node) == {"Fn::And"}:
            return all(self.resolve(item) for item in node["Fn::And"])
        if set(node) == {"Fn::Or"}:
            return any(self.resolve(item) for item in node["Fn::Or"])
        if set(node) == {"Condition"}:
            return self.conditions[node["Condition"]]
        if set(node) == {"Fn::If"}:
            condition, when_true, when_false = node["Fn::If"]
            return self.resolve(when_true if self.conditions[condition] else when_false)
        if set(node) == {"Fn::FindInMap"}:
            mapping, top, second = self.resolve(node["Fn::FindInMap"])
            return self.template["Mappings"][mapping][top][second]
        if set(node) == {"Fn::GetAtt"}:
            resource, attribute = node["Fn::GetAtt"]
            return self.attrs[(resource, attribute)]
        if set(node) == {"Fn::Sub"}:
            return self._sub(node["Fn::Sub"])
        resolved = {key: self.resolve(value) for key, value in node.items()}
        return {key: value for key, value in resolved.items() if value is not NO_VALUE}

    def _sub(self, text: str) -> str:
        def replace(match: re.Match[str]) -> str:
            name = match.group(1)
            if name.startswith("!"):
                return "${" + name[1:] + "}"
            if "." in name:
                resource, attribute = name.split(".", 1)
                return self.attrs[(resource, attribute)]
            return str(self.values[name] if name in self.values else self.ids[name])

        return re.sub(r"\$\{([^}]+)\}", replace, text)

    def properties(self, resource: str) -> dict[str, Any]:
        resolved: dict[str, Any] = self.resolve(self.resources[resource]["Properties"])
        return resolved


def _lifecycle_rule(rule: dict[str, Any]) -> dict[str, Any]:
    api: dict[str, Any] = {
        "ID": rule["Id"],
        "Status": rule["Status"],
        "Filter": {"Prefix": rule.get("Prefix", "")},
    }
    if "ExpirationInDays" in rule:
        api["Expiration"] = {"Days": int(rule["ExpirationInDays"])}
    if "Transitions" in rule:
        api["Transitions"] = [
            {"Days": int(t["TransitionInDays"]), "StorageClass": t["StorageClass"]}
            for t in rule["Transitions"]
        ]
    if "AbortIncompleteMultipartUpload" in rule:
        api["AbortIncompleteMultipartUpload"] = rule["AbortIncompleteMultipartUpload"]
    if "NoncurrentVersionExpiration" in rule:
        days = rule["NoncurrentVersionExpiration"]["NoncurrentDays"]
        api["NoncurrentVersionExpiration"] = {"NoncurrentDays": int(days)}
    return api


def deploy(stack: Stack) -> dict[str, Any]:
    """Make the calls CloudFormation would make, against whatever endpoint boto3 is given."""
    s3 = boto3.client("s3", region_name=REGION)
    bucket_props = stack.properties("DataBucket")
    bucket = bucket_props["BucketName"]
    s3.create_bucket(Bucket=bucket, CreateBucketConfiguration={"LocationConstraint": REGION})
    s3.put_bucket_encryption(
        Bucket=bucket,
        ServerSideEncryptionConfiguration={
            "Rules": [
                {
                    "ApplyServerSideEncryptionByDefault": rule["ServerSideEncryptionByDefault"],
                    "BucketKeyEnabled": rule["BucketKeyEnabled"],
                }
                for rule in bucket_props["BucketEncryption"]["ServerSideEncryptionConfiguration"]
            ]
        },
    )
    s3.put_public_access_block(
        Bucket=bucket,
        PublicAccessBlockConfiguration=bucket_props["PublicAccessBlockConfiguration"],
    )
    s3.put_bucket_ownership_controls(
        Bucket=bucket, OwnershipControls=bucket_props["OwnershipControls"]
    )
    s3.put_bucket_versioning(
        Bucket=bucket, VersioningConfiguration=bucket_props["VersioningConfiguration"]
    )
    s3.put_bucket_lifecycle_configuration(
        Bucket=bucket,
        LifecycleConfiguration={
            "Rules": [_lifecycle_rule(r) for r in bucket_props["LifecycleConfiguration"]["Rules"]]
        },
    )
    policy = stack.properties("DataBucketPolicy")
    s3.put_bucket_policy(Bucket=bucket, Policy=json.dumps(policy["PolicyDocument"]))

    logs = boto3.client("logs", region_name=REGION)
    group = stack.properties("DeliveryLogGroup")
    logs.create_log_group(logGroupName=group["LogGroupName"])
    logs.put_retention_policy(
        logGroupName=group["LogGroupName"], retentionInDays=int(group["RetentionInDays"])
    )
    for stream in ("ErrorDeliveryLogStream", "MetricDeliveryLogStream"):
        props = stack.properties(stream)
        logs.create_log_stream(
            logGroupName=props["LogGroupName"], logStreamName=props["LogStreamName"]
        )

    iam = boto3.client("iam", region_name=REGION)
    role = stack.properties("FirehoseDeliveryRole")
    role_name = stack.ids["FirehoseDeliveryRole"]
    iam.create_role(
        RoleName=role_name,
        AssumeRolePolicyDocument=json.dumps(role["AssumeRolePolicyDocument"]),
        Description=role["Description"],
    )
    for inline in role["Policies"]:
        iam.put_role_policy(
            RoleName=role_name,
            PolicyName=inline["PolicyName"],
            PolicyDocument=json.dumps(inline["PolicyDocument"]),
        )

    producer = stack.properties("ProducerPolicy")
    created = iam.create_policy(
        PolicyName=producer["ManagedPolicyName"],
        PolicyDocument=json.dumps(producer["PolicyDocument"]),
        Description=producer["Description"],
    )

    sns = boto3.client("sns", region_name=REGION)
    topic = stack.properties("AlarmTopic")
    topic_arn = sns.create_topic(
        Name=topic["TopicName"],
        Attributes={"DisplayName": topic["DisplayName"], "KmsMasterKeyId": topic["KmsMasterKeyId"]},
    )["TopicArn"]
    assert topic_arn == stack.ids["AlarmTopic"]
    if "AlarmSubscription" in stack.resources:
        subscription = stack.properties("AlarmSubscription")
        sns.subscribe(
            TopicArn=subscription["TopicArn"],
            Protocol=subscription["Protocol"],
            Endpoint=subscription["Endpoint"],
        )
    cloudwatch = boto3.client("cloudwatch", region_name=REGION)
    alarms = [n for n, r in stack.resources.items() if r["Type"] == "AWS::CloudWatch::Alarm"]
    for name in alarms:
        cloudwatch.put_metric_alarm(**stack.properties(name))

    glue = boto3.client("glue", region_name=REGION)
    database = stack.properties("GlueDatabase")
    glue.create_database(CatalogId=database["CatalogId"], DatabaseInput=database["DatabaseInput"])
    for table in ("ErrorTable", "MetricTable"):
        props = stack.properties(table)
        glue.create_table(
            CatalogId=props["CatalogId"],
            DatabaseName=props["DatabaseName"],
            TableInput=props["TableInput"],
        )
    firehose = boto3.client("firehose", region_name=REGION)
    for stream in ("ErrorStream", "MetricStream"):
        props = stack.properties(stream)
        firehose.create_delivery_stream(
            DeliveryStreamName=props["DeliveryStreamName"],
            DeliveryStreamType=props["DeliveryStreamType"],
            DeliveryStreamEncryptionConfigurationInput=props[
                "DeliveryStreamEncryptionConfigurationInput"
            ],
            ExtendedS3DestinationConfiguration=props["ExtendedS3DestinationConfiguration"],
        )

    return {
        "bucket": bucket,
        "producer_policy_arn": created["Policy"]["Arn"],
        "topic_arn": topic_arn,
        "alarms": alarms,
    }
