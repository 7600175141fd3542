"""Checks that proto/lf/a2a/v1/a2a.proto is wire-identical to the A2A schema shipped in a2a-sdk.

Compares every message (field names, numbers, types, labels, oneofs, message/enum type names),
every enum (value names and numbers) and every RPC of lf.a2a.v1 between the descriptor compiled
from our file and the one inside the official Python SDK. Exits non-zero with one line per
difference. Usage: python check_schema.py <repo root>
"""

import subprocess
import sys
import tempfile
from pathlib import Path

from google.protobuf import descriptor_pb2
from grpc_tools import protoc  # noqa: F401  (ensures grpcio-tools is installed)
import grpc_tools
from a2a.types import a2a_pb2


def ours(root: Path) -> descriptor_pb2.FileDescriptorProto:
    include = Path(grpc_tools.__file__).parent / "_proto"
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "set.bin"
        subprocess.run(
            [sys.executable, "-m", "grpc_tools.protoc", f"-I{root / 'proto'}", f"-I{include}",
             f"--descriptor_set_out={out}", "lf/a2a/v1/a2a.proto"],
            check=True,
        )
        fds = descriptor_pb2.FileDescriptorSet.FromString(out.read_bytes())
    return fds.file[0]


def theirs() -> descriptor_pb2.FileDescriptorProto:
    fdp = descriptor_pb2.FileDescriptorProto()
    a2a_pb2.DESCRIPTOR.CopyToProto(fdp)
    return fdp


def shape(fdp):
    out = {}
    def walk(prefix, messages):
        for m in messages:
            name = f"{prefix}.{m.name}"
            if m.options.map_entry:
                pass
            fields = {}
            for f in m.field:
                oneof = m.oneof_decl[f.oneof_index].name if f.HasField("oneof_index") and not f.proto3_optional else None
                fields[f.name] = (f.number, f.type, f.label, f.type_name, oneof, f.proto3_optional, f.json_name)
            out[f"message {name}"] = fields
            walk(name, m.nested_type)
            for e in m.enum_type:
                out[f"enum {name}.{e.name}"] = {v.name: v.number for v in e.value}
    walk(f".{fdp.package}", fdp.message_type)
    for e in fdp.enum_type:
        out[f"enum .{fdp.package}.{e.name}"] = {v.name: v.number for v in e.value}
    for s in fdp.service:
        out[f"service {s.name}"] = {
            m.name: (m.input_type, m.output_type, m.client_streaming, m.server_streaming) for m in s.method
        }
    return out


def main() -> int:
    root = Path(sys.argv[1] if len(sys.argv) > 1 else ".")
    a, b = shape(ours(root)), shape(theirs())
    problems = []
    for key in sorted(set(a) | set(b)):
        if key not in a:
            problems.append(f"missing in ours: {key}")
        elif key not in b:
            problems.append(f"extra in ours: {key}")
        elif a[key] != b[key]:
            for item in sorted(set(a[key]) | set(b[key])):
                if a[key].get(item) != b[key].get(item):
                    problems.append(f"{key} {item}: ours={a[key].get(item)} sdk={b[key].get(item)}")
    for p in problems:
        print(p)
    print(f"{len(a)} definitions compared, {len(problems)} differences")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
