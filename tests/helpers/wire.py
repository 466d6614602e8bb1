"""Talking to the emulator as users do: boto3's real client (retries off, to see raw faults) or raw HTTP."""

from __future__ import annotations

import http.client
import socket
from urllib.parse import urlsplit

import boto3
import requests
from botocore.config import Config

APP = "app-1"


def pinpoint_client(url: str, access_key: str = "testing"):
    return boto3.client(
        "pinpoint",
        endpoint_url=url,
        region_name="us-east-1",
        aws_access_key_id=access_key,
        aws_secret_access_key="testing",
        config=Config(retries={"total_max_attempts": 1}, connect_timeout=5, read_timeout=10),
    )


def event(event_type: str = "purchase", **extra) -> dict:
    return {"EventType": event_type, "Timestamp": "2026-01-02T03:04:05.678Z", **extra}


def post_raw(url: str, app: str, body: bytes, authorization: str | None = "AWS4-HMAC-SHA256 Credential=testing/x"):
    """A PutEvents request boto3 would refuse to send (it validates parameters client-side)."""
    headers = {"Content-Type": "application/json"}
    if authorization is not None:
        headers["Authorization"] = authorization
    return requests.post(f"{url}/v1/apps/{app}/events", data=body, headers=headers, timeout=10)


def exchange(
    url: str, method: str, path: str, body: bytes | None = None, headers: dict[str, str] | None = None
) -> tuple[int, bytes]:
    """One request over http.client with these headers (``Host`` replaces its own): status and body."""
    address = urlsplit(url)
    connection = http.client.HTTPConnection(address.hostname, address.port, timeout=10)
    try:
        connection.request(method, path, body=body, headers=headers or {})
        response = connection.getresponse()
        return response.status, response.read()
    finally:
        connection.close()


def connect(url: str, timeout: float = 10) -> socket.socket:
    """A raw TCP connection to the emulator at ``url``."""
    address = urlsplit(url)
    return socket.create_connection((address.hostname, address.port), timeout=timeout)


def read_until_closed(sock: socket.socket) -> bytes:
    """Everything the server sends until it closes (the socket's timeout fails the test if it never does)."""
    received = b""
    while chunk := sock.recv(65536):
        received += chunk
    return received
