"""Kinesis Data Streams and Amazon Data Firehose writes, with the limits and faults the real services have.

The emulator answers the JSON 1.1 APIs (``X-Amz-Target: Kinesis_20131202.*`` and
``Firehose_20150804.*``, ``POST /``) on the same port as PutEvents, so boto3's own ``kinesis`` and
``firehose`` clients work against it with ``endpoint_url``. Unlike a plain mock it enforces what a
loader has to cope with: each shard's write budget, the request quotas, per-record failures inside
a 200, whole-request throttling and errors, and answers lost after the write was applied.
"""
