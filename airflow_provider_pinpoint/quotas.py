"""Amazon Pinpoint PutEvents quotas that can be checked before anything is sent.

One place for the numbers, shared by client-side validation, packing and the emulator.
"""

from __future__ import annotations

MAX_EVENTS_PER_REQUEST = 100
MAX_REQUEST_BYTES = 4 * 1024 * 1024
MAX_EVENT_BYTES = 1000 * 1024
MAX_ENDPOINT_BYTES = 15 * 1024

# Per event: attribute keys + metric keys, "should be less than 40" in the service's own words.
MAX_EVENT_ATTRIBUTES_AND_METRICS = 40
MAX_EVENT_KEY_LENGTH = 50
# Longer event attribute values are not rejected: the service drops the whole event silently.
MAX_EVENT_ATTRIBUTE_VALUE_LENGTH = 200

MAX_ENDPOINT_ATTRIBUTE_NAME_LENGTH = 50
MAX_ENDPOINT_ATTRIBUTE_VALUE_LENGTH = 100
MAX_VALUES_PER_ENDPOINT_ATTRIBUTE = 50
# Attributes + Metrics + User.UserAttributes names, per application.
MAX_ENDPOINT_CUSTOM_ATTRIBUTES_PER_APP = 250

MAX_EVENT_TYPES_PER_APP = 1500
MAX_EVENT_ATTRIBUTE_KEYS_PER_APP = 500
MAX_EVENT_METRIC_KEYS_PER_APP = 500

MAX_ENDPOINTS_PER_USER_ID = 15
# Channels for which the 16th endpoint of a user id is refused.
USER_ENDPOINT_LIMIT_CHANNELS = frozenset({"SMS", "PUSH", "VOICE", "EMAIL", "CUSTOM", "IN_APP"})

ENDPOINT_ID_FORBIDDEN_CHARACTERS = frozenset("${}")

# The documented PutEvents rate quota, requests per second per account and region.
DEFAULT_REQUESTS_PER_SECOND = 15.0
# Requests in flight by default. At the default rate (15 requests/s) a handful would do; the rest
# counts when the limit is raised (a raised quota, the emulator, Kinesis with many shards): 16
# requests held 50 ms each allow 320 requests/s, 8 only 160. The cost is the duplicate window: a
# killed run may have sent up to this many requests that its results do not show yet.
DEFAULT_MAX_IN_FLIGHT = 16
