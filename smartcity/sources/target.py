"""What a camera URL points at (file, demo clip, RTSP, HTTP) and plain words for why opening it failed."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import unquote, urlparse

import av

from smartcity.core.logsafe import redact_url, redact_urls_in
from smartcity.sources.clips import demo_video_path
from smartcity.sources.options import SourceOptions

_NETWORK_SCHEMES = ("rtsp", "rtsps", "http", "https", "rtmp", "srt", "udp", "tcp")


@dataclass(frozen=True, slots=True)
class Target:
    """A resolved camera URL: `scheme` is file, demo or a network scheme; `display` hides passwords."""

    url: str = field(repr=False)  # may hold a password: `display` is what may be shown
    scheme: str
    path: str = field(repr=False)
    display: str

    @property
    def is_file(self) -> bool:
        return self.scheme in ("file", "demo")

    def open_path(self) -> str:
        """What to hand to FFmpeg; the demo clip is found (or generated) only now, in the decode thread."""
        if self.scheme == "demo":
            return str(demo_video_path())
        return self.path


def resolve_target(url: str) -> Target:
    """Classify a camera URL. Plain paths are files; file:// URLs may be absolute or relative."""
    if not url or not url.strip():
        raise ValueError("camera URL is empty")
    parsed = urlparse(url)
    scheme = parsed.scheme.lower()
    if scheme in ("", "file") or (len(scheme) == 1 and url[1:3] in (":\\", ":/")):
        # file:///abs/path -> /abs/path ; file://relative/path -> relative/path
        path = unquote(parsed.netloc + parsed.path) if scheme == "file" else url
        return Target(url=url, scheme="file", path=path, display=path)
    if scheme == "demo":
        return Target(url=url, scheme="demo", path="", display=url)
    if scheme in _NETWORK_SCHEMES:
        return Target(url=url, scheme=scheme, path=url, display=redact_url(url))
    raise ValueError(f"unsupported camera URL scheme {scheme!r}: use rtsp, rtsps, http(s), file or demo")


def describe_open_error(exc: BaseException, target: Target, options: SourceOptions, elapsed_s: float) -> str:
    """One line for an operator: why `target` could not be opened (viewers see it, the actor
    logs it: no password or secret parameter of a URL in it, from wherever it came)."""
    return redact_urls_in(_describe_open_error(exc, target, options, elapsed_s))


def _describe_open_error(exc: BaseException, target: Target, options: SourceOptions, elapsed_s: float) -> str:
    detail = _ffmpeg_log_detail(exc)
    reason = _network_failure(exc, target, options, elapsed_s, detail) or _content_failure(exc, target, detail)
    if reason is not None:
        return reason
    if isinstance(exc, av.error.FFmpegError):
        return f"cannot open {target.display}: {_strerror(exc)}{detail}"
    return f"cannot open {target.display}: {exc}"


def _network_failure(
    exc: BaseException, target: Target, options: SourceOptions, elapsed_s: float, detail: str
) -> str | None:
    """Why the camera could not be reached or refused us, or None if that is not the reason."""
    timed_out = elapsed_s >= options.open_timeout_s * 0.9
    if isinstance(exc, av.error.ExitError) or (timed_out and not target.is_file):
        return f"timed out after {options.open_timeout_s:g}s opening {target.display}"
    if isinstance(exc, av.error.ConnectionRefusedError):
        return "connection refused"
    if "Failed to resolve hostname" in detail:
        return f"unknown host: {urlparse(target.url).hostname or '?'}"
    if "No route to host" in detail or isinstance(exc, av.error.OSError) and exc.errno == 113:
        return f"no route to host: {urlparse(target.url).hostname or '?'}"
    if isinstance(exc, av.error.HTTPError | av.error.HTTPClientError):
        return _http_failure(exc, target, detail)
    if isinstance(exc, av.error.ConnectionResetError):
        return "connection reset by the camera"
    if isinstance(exc, av.error.TimeoutError):
        return f"timed out opening {target.display}"
    if isinstance(exc, av.error.ProtocolNotFoundError):
        return f"unsupported protocol: {target.scheme}"
    return None


def _http_failure(exc: BaseException, target: Target, detail: str) -> str:
    if isinstance(exc, av.error.HTTPNotFoundError):
        return f"not found (404): {target.display}"
    if isinstance(exc, av.error.HTTPUnauthorizedError):
        return "unauthorized (401): check the camera's user and password"
    if isinstance(exc, av.error.HTTPForbiddenError):
        return "forbidden (403): the camera refused these credentials"
    return f"HTTP error: {_strerror(exc)}{detail}"


def _content_failure(exc: BaseException, target: Target, detail: str) -> str | None:
    """Why what was reached is not a video we can read, or None if that is not the reason."""
    if isinstance(exc, av.error.FileNotFoundError):
        if target.is_file:
            return f"file not found: {target.display}"
        return f"not found: {target.display}{detail}"
    if isinstance(exc, av.error.IsADirectoryError):
        return f"not a video: {target.display} is a directory"
    if isinstance(exc, av.error.PermissionError):
        return f"permission denied: {target.display}"
    if isinstance(exc, av.error.InvalidDataError):
        if target.is_file or not detail:
            return f"not a video: {Path(target.display).name if target.is_file else target.display}{detail}"
        return f"invalid stream from {target.display}{detail}"
    return None


def _strerror(exc: BaseException) -> str:
    text = getattr(exc, "strerror", None)
    return str(text) if text else str(exc)


def _ffmpeg_log_detail(exc: BaseException) -> str:
    """The last FFmpeg error line that PyAV attached to the exception, as ' (...)'."""
    log_line = getattr(exc, "log", None)
    if isinstance(log_line, tuple) and len(log_line) == 3:
        text = str(log_line[2]).strip()
        if text:
            return f" ({text})"
    return ""
