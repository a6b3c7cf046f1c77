"""Is the Hugging Face hub reachable? One real HTTP probe per process, then offline for good.

A TCP connect is not enough: a proxy or a captive portal accepts connections and then answers
503, an HTML login page, or nothing at all, and ``huggingface_hub`` retries every file against
it (minutes per backbone in the fallback chain). So :func:`hub_online` asks the hub endpoint
(``HF_ENDPOINT``, default https://huggingface.co) for what ``from_pretrained`` asks first, the
metadata of a file of a model repo, with a short total timeout, and counts as online only an
answer that carries the hub's own headers (``X-Repo-Commit``, or ``X-Error-Code`` for a missing
or gated repo). The answer is decided once per process. After a failed probe (or a failure of
the network later, :func:`record_failure`) the rest of the process runs offline:
``HF_HUB_OFFLINE=1`` is set in the environment (DataLoader workers and subprocesses inherit it)
and in ``huggingface_hub.constants``, which huggingface_hub, transformers and timm consult before
every request. When the probe succeeds, what then goes online runs with bounded timeouts
(:func:`bound_timeouts`).
"""
from __future__ import annotations

import logging
import os
import threading
import urllib.error
import urllib.request

log = logging.getLogger("kit")

PROBE_TIMEOUT_S = 4.0  # the whole probe: DNS, connect, request, answer
PROBE_REPO = "MCG-NJU/videomae-base-finetuned-kinetics"
HUB_HEADERS = ("x-repo-commit", "x-error-code")  # huggingface_hub itself requires X-Repo-Commit on a file
TIMEOUTS = {"HF_HUB_ETAG_TIMEOUT": 10, "HF_HUB_DOWNLOAD_TIMEOUT": 30}  # seconds per request / per read
_TRUE = ("1", "ON", "YES", "TRUE")

_lock = threading.Lock()
_decision: dict = {}  # {"online": bool, "reason": str} once decided


def hub_online(repo_id: str = PROBE_REPO) -> bool:
    """Whether this process may use the hub; decided on the first call, the same ever after.

    Offline when ``HF_HUB_OFFLINE`` (or ``TRANSFORMERS_OFFLINE``) is set, or when the probe
    fails; then :func:`go_offline` makes every later hub call local-only.
    """
    with _lock:
        if "online" not in _decision:
            if _offline_requested():
                _decision.update(online=False, reason="HF_HUB_OFFLINE is set")
            else:
                ok, why = probe(repo_id)
                _decision.update(online=ok, reason=why)
                if ok:
                    bound_timeouts()
                else:
                    _set_offline()
                    log.info(f"[info] Hugging Face hub not reachable ({why}): offline for the rest of this process")
        return _decision["online"]


def offline_reason() -> str:
    """Why :func:`hub_online` said no (``""`` when it has not, or said yes)."""
    return "" if _decision.get("online", True) else _decision.get("reason", "")


def probe(repo_id: str = PROBE_REPO, timeout: float = PROBE_TIMEOUT_S) -> tuple[bool, str]:
    """One HEAD request for ``<endpoint>/<repo_id>/resolve/main/config.json``; ``(online, why)``.

    Runs in a daemon thread joined for ``timeout`` seconds in all, so neither a hanging DNS
    lookup nor a server that accepts and never answers can hold the caller longer. Redirects are
    not followed (the hub's own answer carries its headers). Proxies come from the environment,
    as for huggingface_hub.
    """
    url = f"{_endpoint()}/{repo_id}/resolve/main/config.json"
    result: list[tuple[bool, str]] = []

    def ask():
        opener = urllib.request.build_opener(_NoRedirect())
        request = urllib.request.Request(url, method="HEAD", headers={"User-Agent": "kit-hub-probe"})
        try:
            with opener.open(request, timeout=timeout) as r:
                result.append(_judge(r.status, r.headers))
        except urllib.error.HTTPError as e:  # 3xx (not followed), 4xx, 5xx: an answer all the same
            result.append(_judge(e.code, e.headers))
        except Exception as e:  # noqa: BLE001 - refused, reset, timed out, DNS: all mean offline
            result.append((False, f"{type(e).__name__}: {getattr(e, 'reason', e)}"))

    thread = threading.Thread(target=ask, daemon=True, name="kit-hub-probe")
    thread.start()
    thread.join(timeout)
    return result[0] if result else (False, f"no answer from {_endpoint()} within {timeout:g} s")


def _judge(status: int, headers) -> tuple[bool, str]:
    if status < 500 and any(headers.get(h) for h in HUB_HEADERS):
        return True, f"HTTP {status} from the hub"
    return False, f"HTTP {status} without the hub's headers from {_endpoint()} (a proxy or captive portal?)"


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args, **kwargs):
        return None


def record_failure(error: BaseException) -> None:
    """After an online load failed: if the network was the cause, go offline for the rest of the process.

    A missing repo or a bad file is not a network failure and changes nothing.
    """
    if _is_network_error(error):
        with _lock:
            _decision.update(online=False, reason=f"{type(error).__name__} while downloading")
            _set_offline()


def _is_network_error(error: BaseException | None) -> bool:
    seen = 0
    while error is not None and seen < 10:
        name = type(error).__name__
        if isinstance(error, (ConnectionError, TimeoutError)) or any(
                k in name for k in ("Timeout", "ConnectError", "NetworkError", "RemoteProtocolError", "ProxyError",
                                    "OfflineModeIsEnabled", "ConnectionError")):
            return True
        if "couldn't connect" in str(error) or "could not connect" in str(error):
            return True
        status = getattr(getattr(error, "response", None), "status_code", None)
        if isinstance(status, int) and status >= 500:
            return True
        error, seen = error.__cause__ or error.__context__, seen + 1
    return False


def go_offline() -> None:
    """Every later hub call of this process (and its children) stays local (``HF_HUB_OFFLINE=1``)."""
    with _lock:
        _decision.update(online=False, reason=_decision.get("reason") or "set offline")
        _set_offline()


def _set_offline() -> None:
    os.environ["HF_HUB_OFFLINE"] = "1"
    try:
        import huggingface_hub.constants as hf
    except ImportError:
        return
    hf.HF_HUB_OFFLINE = True  # read at import; huggingface_hub, transformers and timm consult it per call


def bound_timeouts() -> None:
    """Caps huggingface_hub's per-request timeouts for what does go online (unless the user set them)."""
    for name, seconds in TIMEOUTS.items():
        os.environ.setdefault(name, str(seconds))
    try:
        import huggingface_hub.constants as hf
        import huggingface_hub.file_download as fd
    except ImportError:
        return
    for name in TIMEOUTS:
        setattr(hf, name, int(os.environ[name]))
    # Without a cached copy huggingface_hub re-asks for a file's metadata with a 60 s timeout and
    # retries; a hub that answered the probe and then stalls must not hold the chain for minutes.
    if isinstance(getattr(fd, "_ETAG_RETRY_TIMEOUT", None), (int, float)):
        fd._ETAG_RETRY_TIMEOUT = min(fd._ETAG_RETRY_TIMEOUT, int(os.environ["HF_HUB_ETAG_TIMEOUT"]))


def _offline_requested() -> bool:
    if any(os.environ.get(k, "").upper() in _TRUE for k in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE")):
        return True
    try:
        import huggingface_hub.constants as hf
    except ImportError:
        return False
    return bool(hf.HF_HUB_OFFLINE)


def _endpoint() -> str:
    try:
        import huggingface_hub.constants as hf
        return hf.ENDPOINT.rstrip("/")
    except ImportError:
        return os.environ.get("HF_ENDPOINT", "https://huggingface.co").rstrip("/")
