"""Set-up for bench/fanout.sh: an organization with N member accounts in moto, the role
`app-server-role` in every member, and a GuardDuty event about one of them. Also measures
moto's own cost per call (the floor for any client), so the script can print ratios."""
import json, sys, time
import boto3

endpoint, n, out = sys.argv[1], int(sys.argv[2]), sys.argv[3]
kw = dict(endpoint_url=endpoint, region_name="us-east-1", aws_access_key_id="testing", aws_secret_access_key="testing")
org = boto3.client("organizations", **kw)
org.create_organization(FeatureSet="ALL")
sts = boto3.client("sts", **kw)
members = []
for i in range(n):
    a = org.create_account(Email=f"m{i}@example.com", AccountName=f"m{i}")["CreateAccountStatus"]["AccountId"]
    c = sts.assume_role(RoleArn=f"arn:aws:iam::{a}:role/OrganizationAccountAccessRole", RoleSessionName="setup")["Credentials"]
    iam = boto3.client("iam", endpoint_url=endpoint, region_name="us-east-1", aws_access_key_id=c["AccessKeyId"],
                       aws_secret_access_key=c["SecretAccessKey"], aws_session_token=c["SessionToken"])
    iam.create_role(RoleName="app-server-role", AssumeRolePolicyDocument=json.dumps({"Version": "2012-10-17", "Statement": []}))
    members.append(a)

event = json.load(open("tests/fixtures/events/constructed/aws.guardduty__UnauthorizedAccess_IAMUser_InstanceCredentialExfiltration.OutsideAWS__constructed.json"))
event["detail"]["accountId"] = members[0]
json.dump(event, open(out, "w"))

# moto's floor: sequential calls of a cheap API from this client.
t = time.perf_counter()
for _ in range(200):
    sts.get_caller_identity()
print(json.dumps({"members": n, "moto_ms_per_call": (time.perf_counter() - t) * 1000 / 200}))
