import os, time, logging, tempfile
logging.basicConfig(level=logging.INFO)
from moto.server import ThreadedMotoServer
srv = ThreadedMotoServer(port=0, verbose=False); srv.start()
host, port = srv.get_host_and_port()
os.environ.update(AWS_ACCESS_KEY_ID="x", AWS_SECRET_ACCESS_KEY="x", AWS_DEFAULT_REGION="eu-west-1", AWS_ENDPOINT_URL=f"http://{host}:{port}")
import boto3
s3 = boto3.client("s3"); s3.create_bucket(Bucket="bench-bucket", CreateBucketConfiguration={"LocationConstraint": "eu-west-1"})
fh = boto3.client("firehose")
for k in ("error","metric"):
    fh.create_delivery_stream(DeliveryStreamName=f"dxtrack-{k}-input-prod", ExtendedS3DestinationConfiguration={"RoleARN":"arn:aws:iam::123456789012:role/x","BucketARN":"arn:aws:s3:::bench-bucket","Prefix":k+"/"})
import dxtrack; print("DX", dxtrack, getattr(dxtrack, "__path__", None))
dxtrack.configure(context="smoke", stage="prod", spool_dir=tempfile.mkdtemp())
t=time.perf_counter()
for i in range(100000):
    dxtrack.metric("m", i, metadata={"a": 1, "b": "x", "c": i})
t1=time.perf_counter()
try:
    1/0
except Exception:
    dxtrack.error()
print("capture", (t1-t)/100000*1e9, "ns/call")
print(dxtrack.flush(30), time.perf_counter()-t1, dxtrack.stats())
n=0; objs=0
for o in s3.list_objects_v2(Bucket="bench-bucket").get("Contents", []):
    objs+=1; n += s3.get_object(Bucket="bench-bucket", Key=o["Key"])["Body"].read().count(b"\n")
print("lines", n, "objects", objs)
