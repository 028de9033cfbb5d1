"""`gti serve`: real HTTP on localhost against a tiny trained run; concurrent requests share beam searches."""

import json
import subprocess
import sys
import threading
import urllib.error
import urllib.request
from pathlib import Path

import pytest

pytest.importorskip("fastapi")
pytest.importorskip("uvicorn")

from gti.recommend import Request  # noqa: E402
from gti.serve import BackgroundServer, MicroBatcher, create_app  # noqa: E402

REPO = Path(__file__).resolve().parents[2]


def call(url: str, path: str, body: object = None, raw: bytes | None = None) -> tuple[int, dict]:
    data = raw if raw is not None else (None if body is None else json.dumps(body).encode())
    request = urllib.request.Request(url + path, data=data, headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=60) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read())


@pytest.fixture(scope="module")
def server(recommender):
    # a long wait so that the concurrent test's requests surely meet in one batch
    with BackgroundServer(create_app(recommender, max_batch=8, max_wait_ms=200)) as running:
        yield running


def test_health_and_recommend_answer_like_the_cli(server, recommender):
    status, health = call(server.url, "/health")
    assert status == 200 and health["status"] == "ok" and health["items"] == 40
    status, answer = call(server.url, "/recommend", {"history": ["i1", "i2", "i3"], "k": 4, "user_id": "u9"})
    assert status == 200 and answer == {"items": recommender.recommend(["i1", "i2", "i3"], k=4), "user_id": "u9"}
    status, answer = call(server.url, "/recommend", {"history": ["i1", "i2"], "exclude_history": True})
    assert status == 200 and len(answer["items"]) == 10 and not {i["item_id"] for i in answer["items"]} & {"i1", "i2"}


@pytest.mark.parametrize(("body", "status", "message"), [
    ({"history": ["i1", "nope"]}, 422, "unknown item id 'nope'"),
    ({"history": []}, 422, "non-empty list"),
    ({"k": 3}, 422, "missing field 'history'"),
    ({"history": ["i1"], "k": "ten"}, 422, "k: expected an integer"),
    ({"history": ["i1"], "colour": 1}, 422, "unknown field 'colour'"),
    ({"history": ["i1"], "exclude_history": "yes"}, 422, "exclude_history"),
    ({"history": ["i1"], "k": True}, 422, "k: expected an integer from 1 to 100, got True"),
    ({"history": ["i1", 2.5]}, 422, "history: item ids must be strings, got 2.5"),
    ({"history": ["i1"], "user_id": [1]}, 422, "user_id: expected a string or an integer"),
    ([1, 2], 400, "expected a JSON object, got array"),
    ("text", 400, "expected a JSON object, got string"),
])
def test_malformed_requests_get_a_4xx_with_a_message(server, body, status, message):
    code, answer = call(server.url, "/recommend", body)
    assert code == status and message in answer["error"]


def test_invalid_json_is_400(server):
    code, answer = call(server.url, "/recommend", raw=b'{"history": [')
    assert code == 400 and "not valid JSON" in answer["error"]


def test_concurrent_requests_share_one_beam_search(server, recommender):
    histories = [[f"i{n}", f"i{n + 1}"] for n in range(8)]
    _, before = call(server.url, "/health")
    answers = [None] * len(histories)
    start = threading.Barrier(len(histories))

    def client(index):
        start.wait()
        answers[index] = call(server.url, "/recommend", {"history": histories[index], "k": 5})

    threads = [threading.Thread(target=client, args=(i,)) for i in range(len(histories))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    _, after = call(server.url, "/health")
    assert after["requests"] - before["requests"] == 8
    assert after["batches"] - before["batches"] < 8  # they met in shared batches
    expected = recommender.recommend_batch(histories, k=5)
    for (status, answer), items in zip(answers, expected):
        assert status == 200
        assert [i["item_id"] for i in answer["items"]] == [i["item_id"] for i in items]
        assert [i["score"] for i in answer["items"]] == pytest.approx([i["score"] for i in items], abs=1e-3)


def test_batcher_groups_requests_and_reports_failures(recommender):
    batcher = MicroBatcher(recommender, max_batch=3, max_wait_ms=100)
    futures = [batcher.submit(Request((f"i{n}",), 2)) for n in range(7)]
    results = [future.result(timeout=60) for future in futures]
    assert batcher.batches == 3 and batcher.requests == 7 and all(len(r) == 2 for r in results)
    broken = Request(("not-in-catalog",), 2)  # unchecked: the model side raises, the caller hears of it
    with pytest.raises(Exception):  # noqa: B017 (whatever the model side raised reaches the caller)
        batcher.submit(broken).result(timeout=60)
    assert batcher.submit(Request(("i1",), 1)).result(timeout=60)  # and the worker keeps going
    batcher.close()


def test_gti_serve_command_serves_an_export(trained_run, tmp_path):
    """The console verb itself, in a subprocess, on a free port."""
    import socket

    from gti.cli import main

    export = tmp_path / "exported"
    assert main(["export", str(trained_run), "--out", str(export)]) == 0
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    env = {"PYTHONPATH": str(REPO / "src"), "HF_HUB_OFFLINE": "1", "PATH": "/usr/bin:/bin"}
    process = subprocess.Popen([sys.executable, "-m", "gti.cli", "serve", str(export), "--port", str(port)],
                               stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env)
    try:
        first = process.stdout.readline()
        assert f"on http://127.0.0.1:{port}" in first and "40 items" in first
        url = f"http://127.0.0.1:{port}"
        for _ in range(600):
            try:
                status, health = call(url, "/health")
                break
            except (urllib.error.URLError, ConnectionError):
                assert process.poll() is None, process.stdout.read()
                threading.Event().wait(0.05)
        assert status == 200 and health["items"] == 40
        status, answer = call(url, "/recommend", {"history": ["i3"], "k": 2})
        assert status == 200 and len(answer["items"]) == 2
    finally:
        process.terminate()
        process.wait(timeout=30)


def test_missing_server_packages_is_one_line(monkeypatch, capsys):
    import importlib.util

    from gti.cli import main

    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "uvicorn" else real(name, *a))
    assert main(["serve", "anything"]) == 2
    assert capsys.readouterr().err.strip() == "gti: error: gti serve needs uvicorn: pip install 'gti[serve]'"


def test_serve_benchmark_runs_on_a_tiny_run(trained_run, tmp_path):
    out = tmp_path / "serve.json"
    env = {"PYTHONPATH": str(REPO / "src"), "HF_HUB_OFFLINE": "1", "PATH": "/usr/bin:/bin"}
    script = REPO / "benchmarks" / "serve.py"
    done = subprocess.run([sys.executable, str(script), str(trained_run), "--requests", "4", "--clients", "4",
                           "--repeats", "5", "--out", str(out)], capture_output=True, text=True, env=env, cwd=REPO)
    assert done.returncode == 0, done.stderr[-2000:]
    result = json.loads(out.read_text())
    for mode in ("sequential", "concurrent"):
        assert set(result[mode]) == {"requests_per_s", "p50_ms", "p95_ms", "mean_batch"}
        spread = result[mode]["requests_per_s"]
        assert 0 < spread["min"] <= spread["median"] <= spread["max"]
        assert len(result["per_repeat"][mode]) == 5
    assert result["sequential"]["mean_batch"]["max"] == 1.0 and result["concurrent"]["mean_batch"]["max"] > 1.0
    assert result["speedup_concurrent_vs_sequential"] > 0 and "cpu_cores" in result["machine"]
    assert result["command"].startswith("HF_HUB_OFFLINE=1 python benchmarks/serve.py")
    assert str(tmp_path) not in out.read_text() and "/" + "tmp" not in result["command"]  # no absolute paths


def test_openapi_documents_the_typed_bodies(server):
    status, schema = call(server.url, "/openapi.json")
    assert status == 200
    models = schema["components"]["schemas"]
    assert {"RecommendRequest", "RecommendResponse", "RecommendedItem", "Health", "ErrorMessage"} <= set(models)
    assert set(models["RecommendRequest"]["properties"]) == {"history", "k", "exclude_history", "user_id"}
    assert models["RecommendRequest"]["required"] == ["history"]
    post = schema["paths"]["/recommend"]["post"]
    assert post["requestBody"]["content"]["application/json"]["schema"]["$ref"] == "#/components/schemas/RecommendRequest"
    assert post["responses"]["200"]["content"]["application/json"]["schema"]["$ref"].endswith("/RecommendResponse")
    assert {"400", "413", "422"} <= set(post["responses"])
    assert schema["paths"]["/health"]["get"]["responses"]["200"]["content"]["application/json"]["schema"]["$ref"] \
        .endswith("/Health")
    with urllib.request.urlopen(server.url + "/docs", timeout=60) as page:
        text = page.read().decode()
    # a self-contained page: nothing loaded from another host, so it works offline
    assert page.status == 200 and "POST /recommend" in text and "<code>history</code>" in text and "/openapi.json" in text
    assert "http://" not in text and "https://" not in text and "<script" not in text


def test_oversize_requests_are_refused_with_a_clear_message(recommender):
    from gti.serve import Limits

    with BackgroundServer(create_app(recommender, limits=Limits(max_body_bytes=200, max_history=3, max_k=5))) as small:
        body = {"history": ["i1"] * 40}
        code, answer = call(small.url, "/recommend", body)
        assert code == 413 and answer["error"] == (f"the body has {len(json.dumps(body))} bytes, more than the limit "
                                                   "of 200 (gti serve --max-body-bytes)")
        code, answer = call(small.url, "/recommend", {"history": ["i1"]})
        assert code == 200 and len(answer["items"]) == 5  # without k: the default 10, cut to the limit
        code, answer = call(small.url, "/recommend", {"history": ["i1", "i2", "i3", "i4"]})
        assert code == 422 and answer["error"] == "history: 4 items, more than the limit of 3"
        code, answer = call(small.url, "/recommend", {"history": ["i1"], "k": 6})
        assert code == 422 and answer["error"] == "k: expected an integer from 1 to 5, got 6"
        code, answer = call(small.url, "/recommend", {"history": ["i1", "i2", "i3"], "k": 5})
        assert code == 200 and len(answer["items"]) == 5


def test_a_body_without_content_type_is_read_as_json(server):
    """`curl -d '{...}'` sends application/x-www-form-urlencoded; the body is JSON all the same."""
    request = urllib.request.Request(server.url + "/recommend", data=b'{"history": ["i1"], "k": 2}')
    with urllib.request.urlopen(request, timeout=60) as response:
        assert response.status == 200 and len(json.loads(response.read())["items"]) == 2
