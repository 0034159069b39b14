"""The local judge server as a standalone process (`python -m unipic.judges.local_server`), as a pipeline
step or a developer would run it: binds 127.0.0.1 on the given port, answers both protocols, stops by PID."""

import os
import signal
import socket
import subprocess
import sys
import time

import httpx
import numpy as np

from unipic.judges import KServeV2Scorer, OpenAIVLMJudge


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_standalone_server_answers_both_protocols():
    port = _free_port()
    env = dict(os.environ, JUDGE_KEY="k3y")
    proc = subprocess.Popen([sys.executable, "-m", "unipic.judges.local_server", "--port", str(port),
                             "--api-key-env", "JUDGE_KEY"], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        base = f"http://127.0.0.1:{port}"
        for _ in range(100):
            try:
                if httpx.get(f"{base}/v2/health/ready", timeout=0.5).status_code == 200:
                    break
            except httpx.TransportError:
                time.sleep(0.1)
        else:
            raise AssertionError(proc.stderr.read().decode() if proc.poll() is not None else "server did not start")
        img = np.full((32, 32, 3), 255, np.uint8)
        with OpenAIVLMJudge(f"{base}/v1", "shapesworld-judge", api_key="k3y") as j:
            v = j.judge(j.pq_request(img))
        assert v.ok and v.scores == [10, 10]
        with KServeV2Scorer(base, "shapesworld-scorer", api_key="k3y") as sc:
            assert sc.score([img])[0].ok
        assert httpx.get(f"{base}/v1/models").json()["data"][0]["id"] == "shapesworld-judge"
    finally:
        proc.send_signal(signal.SIGINT)
        try:  # teardown of an interpreter with torch loaded once took > 10 s on 2 shared cores
            proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
            raise
    assert proc.returncode is not None
