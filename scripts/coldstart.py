#!/usr/bin/env python3
"""Cold start of the packaged Lambda bootstraps: time from process start to the first Lambda
Runtime API request (GET /2018-06-01/runtime/invocation/next), against a local listener.

usage: python3 scripts/coldstart.py [target/lambda] [runs]
Runs each x86_64 zip's bootstrap natively (arm64 ones under qemu would measure qemu, not us).
"""
import os, socket, statistics, subprocess, sys, tempfile, time, zipfile

lambda_dir = sys.argv[1] if len(sys.argv) > 1 else "target/lambda"
runs = int(sys.argv[2]) if len(sys.argv) > 2 else 20
env_common = {
    "PATH": "/usr/bin:/bin", "AWS_REGION": "us-east-1", "AWS_DEFAULT_REGION": "us-east-1",
    "AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing", "AWS_SESSION_TOKEN": "testing",
    "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": "1024", "AWS_LAMBDA_FUNCTION_VERSION": "$LATEST",
    "AWS_LAMBDA_LOG_STREAM_NAME": "cold", "AWS_LAMBDA_LOG_GROUP_NAME": "cold",
    "soci_index_generator_lambda_arn": "arn:aws:lambda:us-east-1:123456789012:function:gen",
}
with tempfile.TemporaryDirectory() as tmp:
    for function in ("ecr-image-filter", "soci-index-generator"):
        zpath = os.path.join(lambda_dir, f"{function}-x86_64.zip")
        with zipfile.ZipFile(zpath) as z:
            z.extract("bootstrap", os.path.join(tmp, function))
        exe = os.path.join(tmp, function, "bootstrap")
        os.chmod(exe, 0o755)
        times = []
        for _ in range(runs):
            server = socket.socket()
            server.bind(("127.0.0.1", 0))
            server.listen(1)
            port = server.getsockname()[1]
            env = dict(env_common, AWS_LAMBDA_RUNTIME_API=f"127.0.0.1:{port}", AWS_LAMBDA_FUNCTION_NAME=function)
            started = time.perf_counter()
            proc = subprocess.Popen([exe], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            server.settimeout(10)
            conn, _ = server.accept()
            request = conn.recv(4096)
            elapsed = time.perf_counter() - started
            assert b"/runtime/invocation/next" in request, request[:200]
            times.append(elapsed * 1000)
            proc.kill(); proc.wait(); conn.close(); server.close()
        size = os.path.getsize(zpath)
        print(f"{function}: zip {size} bytes; process start -> first runtime API request: "
              f"median {statistics.median(times):.1f} ms, min {min(times):.1f} ms, max {max(times):.1f} ms ({runs} runs)")
