"""The bench's load threads all ask for a bearer token at once; the key pair they create
on first use must be one pair (a private key from one thread and a public key from another
made every request of a run 401)."""
import threading
import time

import jwt

from bench import harness
from kit import devtokens


def test_concurrent_first_tokens_share_one_matching_key_pair(tmp_path, monkeypatch):
    monkeypatch.setattr(harness, "KEYS", tmp_path / "auth")
    real_fdopen = devtokens.os.fdopen

    def slow_fdopen(fd, *args, **kwargs):
        # a loaded machine: the private key's file exists a while before it is written
        time.sleep(0.05)
        return real_fdopen(fd, *args, **kwargs)

    monkeypatch.setattr(devtokens.os, "fdopen", slow_fdopen)
    tokens, barrier = [], threading.Barrier(8)

    def first_token():
        barrier.wait()
        tokens.append(harness.bearer()["Authorization"].split()[1])

    threads = [threading.Thread(target=first_token) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    public = (tmp_path / "auth" / "public.pem").read_bytes()
    assert len(tokens) == 8
    for token in tokens:
        assert jwt.decode(token, public, algorithms=["ES256", "RS256"],
                          audience="dealflow")["sub"] == "ada"
