"""``arrayq serve`` as a real server process on loopback, driven by httpx: the tiny
checkpoint with a word-level tokenizer and a chat template written here.

Expected tokens come from ``arrayq.models.generate`` in this process (one request alone,
no server, no batching), in the activation mode ``arrayq serve`` picks by default (``auto``:
the backend's first ``activation_modes()``, int8 on NumPy's native kernels); expected texts
from the ``tokenizers`` library; expected chat
prompts are written out by hand from the template below. The server is started once
(a few seconds), with small limits so that back-pressure is reachable, and is stopped
(terminated, then killed) whatever happens."""

from __future__ import annotations

import concurrent.futures
import contextlib
import json
import selectors
import signal
import subprocess
import sys
import time

import pytest

httpx = pytest.importorskip("httpx")
pytest.importorskip("starlette")
pytest.importorskip("uvicorn")
pytest.importorskip("jinja2")
tokenizers = pytest.importorskip("tokenizers")

import arrayq as aq  # noqa: E402
from arrayq import models  # noqa: E402

START_SECONDS = 60  # the server prints its address after loading; on 2 busy cores ~3 s
MAX_BATCH, MAX_QUEUED, MAX_TOKENS = 3, 3, 3000
SPECIALS = ["<|im_start|>", "<|im_end|>"]
WORDS = [f"w{i}" for i in range(500)]
TEMPLATE = (
    "{% for m in messages %}<|im_start|>{{ m.role }} {{ m.content }}<|im_end|>{% endfor %}"
    "{% if add_generation_prompt %}<|im_start|>assistant{% endif %}"
)


def write_tokenizer(folder):
    """A word-level tokenizer: the special tokens are ids 0 and 1, w0..w499 ids 2..501,
    the roles 502..504; words split on whitespace."""
    from tokenizers import Tokenizer, decoders, pre_tokenizers
    from tokenizers import models as tm

    vocab = {t: i for i, t in enumerate([*SPECIALS, *WORDS, "user", "system", "assistant", "[UNK]"])}
    tok = Tokenizer(tm.WordLevel(vocab, unk_token="[UNK]"))
    tok.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
    tok.decoder = decoders.WordPiece(prefix="##")  # joins words with spaces
    tok.add_special_tokens(SPECIALS)
    tok.save(str(folder / "tokenizer.json"))
    config = {"chat_template": TEMPLATE, "eos_token": "<|im_end|>", "bos_token": None}
    (folder / "tokenizer_config.json").write_text(json.dumps(config))
    return tok


def ids(words):
    """Hand tokenization of a space-separated string (the vocabulary above)."""
    table = {**{t: i for i, t in enumerate(SPECIALS)}, **{w: i + 2 for i, w in enumerate(WORDS)}}
    table.update(user=502, system=503, assistant=504)
    return [table[w] for w in words.split()]


#: the NumPy backend's mode for ``--activations auto``
AUTO = aq.get_backend("numpy").activation_modes()[0]


def alone(model, prompt, n):
    """generate()'s tokens for one request, in the server's default activation mode."""
    with aq.get_backend("numpy").activations(AUTO):
        return list(models.generate(model, prompt, n, stop_ids=()))


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory):
    path = models.make_checkpoint(tmp_path_factory.mktemp("serve") / "tiny", "tiny")
    write_tokenizer(path)
    return path


@pytest.fixture(scope="module")
def model(checkpoint):
    return models.load(checkpoint, backend="numpy")


@contextlib.contextmanager
def running_server(checkpoint, backend, log_path):
    """``arrayq serve`` on a free port: yields (base URL, process); the process is reaped
    at the end, whatever happened."""
    log = open(log_path, "w+")
    cmd = [sys.executable, "-m", "arrayq.cli", "serve", "--model", str(checkpoint), "--backend", backend]
    cmd += ["--port", "0", "--model-name", "tiny-test", "--max-batch", str(MAX_BATCH)]
    cmd += ["--max-queued", str(MAX_QUEUED), "--max-tokens", str(MAX_TOKENS)]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=log, text=True)
    try:
        sel = selectors.DefaultSelector()
        sel.register(proc.stdout, selectors.EVENT_READ)
        line, deadline = "", time.monotonic() + START_SECONDS
        while "listening on " not in line and time.monotonic() < deadline and proc.poll() is None:
            if sel.select(timeout=0.5):
                line = proc.stdout.readline()
        if "listening on " not in line:
            log.seek(0)
            pytest.fail(f"the server did not start: {line!r}\n{log.read()[-3000:]}")
        yield line.split("listening on ")[1].strip(), proc
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(15)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(15)
        log.close()


@pytest.fixture(scope="module")
def server(checkpoint, tmp_path_factory):
    with running_server(checkpoint, "numpy", tmp_path_factory.mktemp("log") / "stderr.txt") as running:
        yield running


@pytest.fixture(scope="module")
def url(server):
    return server[0]


@pytest.fixture
def client(url):
    with httpx.Client(base_url=url, timeout=60) as c:
        yield c


def complete(client, prompt, n, **kw):
    body = {"model": "tiny-test", "prompt": prompt, "max_tokens": n, "temperature": 0, "ignore_eos": True, **kw}
    r = client.post("/v1/completions", json=body)
    assert r.status_code == 200, r.text
    return r.json()


def wait_idle(client, seconds=5):  # a 3000-token request left running takes ~15 s
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        load = client.get("/health").json()
        if load["running"] == 0 and load["waiting"] == 0:
            return load
        time.sleep(0.05)
    pytest.fail(f"the server still holds requests: {load}")


def test_health_and_models(client):
    h = client.get("/health")
    assert h.status_code == 200
    body = h.json()
    decode = body.pop("decode")
    assert body == {
        "status": "ok",
        "running": 0,
        "waiting": 0,
        "max_batch": MAX_BATCH,
        "max_queued": MAX_QUEUED,
        # the defaults: auto's mode, and prompts prefilled together where that is exact (int8)
        "activations": AUTO,
        "prefill_together": AUTO == "int8",
    }
    assert set(decode) == {
        "decode_steps",
        "decoded_tokens",
        "decode_seconds",
        "prefilled_tokens",
        "prefill_passes",
        "step_plans",
    } | {
        "step_plans_eager",
        "step_plan_hits",
        *(f"{name}_seconds" for name in ("idle", "prefill", "sample", "join", "other")),
    }
    assert decode["decoded_tokens"] >= decode["decode_steps"] >= 0 and decode["decode_seconds"] >= 0
    m = client.get("/v1/models").json()
    assert m["object"] == "list" and [d["id"] for d in m["data"]] == ["tiny-test"]


PROMPTS = [[5, 6, 7], "w1 w2 w3 w4 w5", [300], ids("w9 " * 40), [100, 200], "w42"]
LENGTHS = [20, 33, 7, 25, 12, 18]


def test_concurrent_greedy_completions_equal_single_requests(client, url, model, checkpoint):
    """6 clients at once (3 decode together, the rest queue and join as places free): each
    gets the tokens generate() gives its prompt alone, and the tokenizer's text of them."""
    tok = tokenizers.Tokenizer.from_file(str(checkpoint / "tokenizer.json"))
    prompt_ids = [p if isinstance(p, list) else tok.encode(p).ids for p in PROMPTS]
    want = [alone(model, p, n) for p, n in zip(prompt_ids, LENGTHS)]

    def one(i):
        with httpx.Client(base_url=url, timeout=60) as c:
            return complete(c, PROMPTS[i], LENGTHS[i])

    with concurrent.futures.ThreadPoolExecutor(len(PROMPTS)) as pool:
        got = list(pool.map(one, range(len(PROMPTS))))
    for g, w, p in zip(got, want, prompt_ids):
        choice = g["choices"][0]
        assert choice["token_ids"] == w
        assert choice["text"] == tok.decode(w)
        assert choice["finish_reason"] == "length"
        assert g["usage"] == {"prompt_tokens": len(p), "completion_tokens": len(w), "total_tokens": len(p) + len(w)}
    # and alone, one after the other, the server gives the same
    assert complete(client, PROMPTS[3], LENGTHS[3])["choices"][0]["token_ids"] == want[3]


def sse(response):
    """The data payloads of a server-sent event stream, up to [DONE]."""
    out = []
    for line in response.iter_lines():
        if line.startswith("data: "):
            if line == "data: [DONE]":
                return out, True
            out.append(json.loads(line[6:]))
    return out, False


@pytest.mark.parametrize("chat", [False, True])
def test_streaming_equals_non_streaming(client, chat):
    if chat:
        body = {"messages": [{"role": "user", "content": "w3 w4"}], "max_tokens": 15}
        path = "/v1/chat/completions"
    else:
        body = {"prompt": [9, 8, 7], "max_tokens": 15}
        path = "/v1/completions"
    body.update(temperature=0, ignore_eos=True, stream_options={"include_usage": True})
    whole = client.post(path, json=body).json()
    with client.stream("POST", path, json={**body, "stream": True}) as r:
        assert r.status_code == 200
        assert r.headers["content-type"].startswith("text/event-stream")
        events, done = sse(r)
    assert done
    usage = events.pop()["usage"]
    assert usage == whole["usage"]
    choices = [e["choices"][0] for e in events]
    streamed = [t for c in choices for t in c.get("token_ids", [])]
    assert streamed == whole["choices"][0]["token_ids"]
    assert choices[-1]["finish_reason"] == whole["choices"][0]["finish_reason"] == "length"
    if chat:
        assert choices[0]["delta"] == {"role": "assistant", "content": ""}
        text = "".join(c["delta"].get("content", "") for c in choices)
        assert text == whole["choices"][0]["message"]["content"]
        assert whole["object"] == "chat.completion" and events[0]["object"] == "chat.completion.chunk"
    else:
        assert "".join(c["text"] for c in choices) == whole["choices"][0]["text"]


def test_chat_uses_the_template(client, model):
    """A conversation's prompt is the template's text, tokenized: written out by hand."""
    messages = [{"role": "system", "content": "w1"}, {"role": "user", "content": [{"type": "text", "text": "w2 w3"}]}]
    prompt = ids("<|im_start|> system w1 <|im_end|> <|im_start|> user w2 w3 <|im_end|> <|im_start|> assistant")
    want = alone(model, prompt, 10)
    body = {"messages": messages, "max_tokens": 10, "temperature": 0, "ignore_eos": True}
    got = client.post("/v1/chat/completions", json=body).json()
    assert got["usage"]["prompt_tokens"] == len(prompt)
    assert got["choices"][0]["token_ids"] == want
    assert got["choices"][0]["message"]["role"] == "assistant"


BAD = [
    ("/v1/completions", b"{not json", 400, None),
    ("/v1/completions", b"[1, 2]", 400, None),
    ("/v1/completions", {"max_tokens": 5}, 400, "prompt"),
    ("/v1/completions", {"prompt": [], "max_tokens": 5}, 400, "prompt"),
    ("/v1/completions", {"prompt": [1, "a"]}, 400, "prompt"),
    ("/v1/completions", {"prompt": [1, 99999]}, 400, None),
    ("/v1/completions", {"prompt": [1], "max_tokens": 0}, 400, "max_tokens"),
    ("/v1/completions", {"prompt": [1], "max_tokens": MAX_TOKENS + 1}, 400, "max_tokens"),
    ("/v1/completions", {"prompt": [1], "max_tokens": "5"}, 400, "max_tokens"),
    ("/v1/completions", {"prompt": [1], "temperature": -1}, 400, "temperature"),
    ("/v1/completions", b'{"prompt": [1], "temperature": NaN}', 400, "temperature"),
    ("/v1/completions", {"prompt": [1], "max_tokens": 10**30}, 400, "max_tokens"),
    ("/v1/completions", {"prompt": [1], "seed": -3}, 400, "seed"),
    ("/v1/completions", {"prompt": [[1], [2]]}, 400, "prompt"),
    ("/v1/completions", {"prompt": [1], "stop": ["\n"]}, 400, "stop"),
    ("/v1/completions", {"prompt": [1], "top_p": 2}, 400, "top_p"),
    ("/v1/completions", {"prompt": [1], "n": 2}, 400, "n"),
    ("/v1/completions", {"prompt": [1], "stream": "yes"}, 400, "stream"),
    ("/v1/completions", {"prompt": [1], "logprobs": 3}, 400, "logprobs"),
    ("/v1/completions", {"prompt": [1] * 2000, "max_tokens": 2500}, 400, None),  # over the 4096-token context
    ("/v1/chat/completions", {"messages": []}, 400, "messages"),
    ("/v1/chat/completions", {"messages": [{"role": "user"}]}, 400, "messages"),
    ("/v1/chat/completions", {"messages": [{"role": "user", "content": [{"type": "image_url"}]}]}, 400, "messages"),
    ("/v1/nowhere", {}, 404, None),
]


@pytest.mark.parametrize(("path", "body", "status", "param"), BAD)
def test_bad_requests_get_json_errors(client, path, body, status, param):
    if isinstance(body, bytes):
        r = client.post(path, content=body, headers={"content-type": "application/json"})
    else:
        r = client.post(path, json=body)
    assert r.status_code == status, r.text
    error = r.json()["error"]
    assert error["message"] and error["param"] == param


def test_wrong_method_and_oversize_body(client):
    r = client.get("/v1/completions")
    assert r.status_code == 405 and "error" in r.json()
    r = client.post("/v1/completions", content=b" " * (9 * 2**20), headers={"content-type": "application/json"})
    assert r.status_code == 413 and "error" in r.json()


def test_full_server_refuses_with_503_and_disconnects_free_places(client, url):
    """MAX_BATCH + MAX_QUEUED long streams fill the server: one more request gets 503 with
    Retry-After. Closing the streams mid-way (the client goes) frees every place."""
    body = {"prompt": [1, 2, 3], "max_tokens": MAX_TOKENS, "temperature": 0, "ignore_eos": True, "stream": True}
    with contextlib.ExitStack() as stack:
        responses = []
        for _ in range(MAX_BATCH + MAX_QUEUED):
            c = stack.enter_context(httpx.Client(base_url=url, timeout=60))
            responses.append(stack.enter_context(c.stream("POST", "/v1/completions", json=body)))
            assert responses[-1].status_code == 200
        # at once, before a running stream can finish its tokens and let a waiting one in
        # (on a fast machine the tiny model decodes thousands of tokens a second)
        full = client.post("/v1/completions", json={**body, "stream": False, "max_tokens": 1})
        assert full.status_code == 503, full.text
        assert full.headers["retry-after"] == "1"
        assert "max_batch" in full.json()["error"]["message"]
        for r in responses[:MAX_BATCH]:  # the running ones stream tokens
            assert json.loads(next(r.iter_lines())[6:])["choices"][0]["token_ids"]
        assert client.get("/health").json()["running"] == MAX_BATCH
    # the clients are closed, their connections with them
    load = wait_idle(client)
    assert load["running"] == 0
    assert complete(client, [4], 3)["choices"][0]["finish_reason"] == "length"


def test_non_streaming_client_that_leaves_frees_its_place(client, url):
    body = {"prompt": [1, 2], "max_tokens": MAX_TOKENS, "temperature": 0, "ignore_eos": True}
    with httpx.Client(base_url=url, timeout=0.5) as c:
        with pytest.raises(httpx.TimeoutException):
            c.post("/v1/completions", json=body)
    wait_idle(client)


def test_the_server_survived(server, client):
    _, proc = server
    assert proc.poll() is None
    assert client.get("/health").json()["status"] == "ok"
    assert complete(client, [7], 2)["choices"][0]["token_ids"]


@pytest.mark.parametrize(
    ("option", "message"),
    [
        (["--max-batch", "0"], "max_batch must be an integer >= 1"),
        (["--burst-wait-ms", "-1"], "burst_wait must be a number of seconds from 0 to 1"),
        (["--activations", "int4"], "invalid choice: 'int4'"),
        (["--kv-dtype", "int8"], "invalid choice: 'int8'"),
        (["--port", "70000"], "cannot listen"),
    ],
)
def test_serve_refuses_bad_options_before_loading(checkpoint, capsys, option, message):
    from arrayq.cli import main

    assert main(["serve", "--model", str(checkpoint / "missing"), *option]) == 2
    assert message in capsys.readouterr().err


def test_mlx_server_gives_the_mlx_tokens(checkpoint, tmp_path):
    """The MLX backend serves from its worker thread (MLX's arrays belong to the thread
    that made them): concurrent greedy requests give generate()'s tokens on MLX."""
    import arrayq as aq

    if "mlx" not in [b.name for b in aq.list_backends() if b.available]:
        pytest.skip("MLX is not installed")
    mlx_model = models.load(checkpoint, backend="mlx")
    want = [list(models.generate(mlx_model, p, 9, stop_ids=())) for p in ([3, 4], [77])]
    with running_server(checkpoint, "mlx", tmp_path / "stderr.txt") as (url, _):
        with httpx.Client(base_url=url, timeout=60) as c, concurrent.futures.ThreadPoolExecutor(2) as pool:
            got = list(pool.map(lambda p: complete(c, p, 9)["choices"][0]["token_ids"], ([3, 4], [77])))
    assert got == want
