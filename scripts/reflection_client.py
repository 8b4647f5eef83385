"""Python's standard gRPC clients against a running coordinator (scripts/reflection-test.sh).

Lists the services with grpcio-reflection's ProtoReflectionDescriptorDatabase (it speaks
grpc.reflection.v1alpha, as grpcui and older grpcurl do), reads the Ladder service's methods from
the descriptors it returns, lists them again through grpc.reflection.v1, checks that reflection refuses a
call without the token, and that health answers without one.

Usage: reflection_client.py ADDR TOKEN
"""

import sys

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha.proto_reflection_descriptor_database import ProtoReflectionDescriptorDatabase
from google.protobuf.descriptor_pool import DescriptorPool

WANT = {"ladder.v1.Ladder", "ladder.v1.WorkerService", "grpc.health.v1.Health"}


class Bearer(grpc.AuthMetadataPlugin):
    def __init__(self, token):
        self.token = token

    def __call__(self, context, callback):
        callback((("authorization", f"Bearer {self.token}"),), None)


def authed(addr, token):
    creds = grpc.composite_channel_credentials(
        grpc.local_channel_credentials(), grpc.metadata_call_credentials(Bearer(token))
    )
    return grpc.secure_channel(addr, creds)


def fail(msg):
    print(f"reflection client: FAILED: {msg}", file=sys.stderr)
    sys.exit(1)


def v1_services(channel):
    """grpc.reflection.v1's list, sent with v1alpha's messages (the two are the same on the wire;
    grpcio-reflection ships no v1 client)."""
    from grpc_reflection.v1alpha import reflection_pb2 as r

    call = channel.stream_stream(
        "/grpc.reflection.v1.ServerReflection/ServerReflectionInfo",
        request_serializer=r.ServerReflectionRequest.SerializeToString,
        response_deserializer=r.ServerReflectionResponse.FromString,
    )
    replies = call(iter([r.ServerReflectionRequest(list_services="")]))
    return {s.name for reply in replies for s in reply.list_services_response.service}


def main():
    addr, token = sys.argv[1], sys.argv[2]
    with authed(addr, token) as channel:
        db = ProtoReflectionDescriptorDatabase(channel)
        services = set(db.get_services())
        if not WANT <= services:
            fail(f"v1alpha lists {sorted(services)}; missing {sorted(WANT - services)}")
        pool = DescriptorPool(db)
        ladder = pool.FindServiceByName("ladder.v1.Ladder")
        methods = {m.name for m in ladder.methods}
        for m in ("SubmitSweep", "GetCurve", "FetchCheckpoint", "GetFits", "WatchJobs"):
            if m not in methods:
                fail(f"ladder.v1.Ladder's descriptor lacks {m}: {sorted(methods)}")
        v1 = v1_services(channel)
        if not WANT <= v1:
            fail(f"v1 lists {sorted(v1)}")
        print(f"v1alpha (grpcio-reflection): {', '.join(sorted(services))}")
        print(f"  ladder.v1.Ladder: {len(methods)} methods, from the descriptors reflection sent")
        print(f"v1: {', '.join(sorted(v1))}")

    with grpc.insecure_channel(addr) as channel:
        try:
            ProtoReflectionDescriptorDatabase(channel).get_services()
            fail("reflection answered a call without the token")
        except grpc.RpcError as e:
            if e.code() != grpc.StatusCode.UNAUTHENTICATED:
                fail(f"reflection without the token answered {e.code()}, expected UNAUTHENTICATED")
        print("without the token: reflection UNAUTHENTICATED", end="")
        reply = health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest(service=""))
        if reply.status != health_pb2.HealthCheckResponse.SERVING:
            fail(f"health answered {reply.status}")
        print(", health SERVING")


if __name__ == "__main__":
    main()
