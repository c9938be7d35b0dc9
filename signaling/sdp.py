"""Reading WHIP/WHEP offers and choosing the codecs of an answer."""

from __future__ import annotations

from typing import Any

from aiortc import RTCRtpSender
from aiortc import sdp as aiortc_sdp
from aiortc.rtcpeerconnection import is_codec_compatible

from .errors import SignalingError

SDP_CONTENT_TYPE = "application/sdp"
RELAYED_VIDEO = ("video/vp8", "video/h264")


def parse_offer(body: bytes) -> Any:
    """Parse an SDP offer; anything that is not one is ``malformed_sdp``."""
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError:
        raise SignalingError("malformed_sdp", "The SDP offer is not UTF-8 text.") from None
    if not text.lstrip().startswith("v=0"):
        raise SignalingError("malformed_sdp", "The body is not an SDP offer (no 'v=0').")
    try:
        description = aiortc_sdp.SessionDescription.parse(text)
    except Exception as exc:  # aiortc raises ValueError, KeyError, IndexError...
        raise SignalingError("malformed_sdp", f"The SDP offer cannot be parsed: {exc}") from None
    if not description.media:
        raise SignalingError("malformed_sdp", "The SDP offer has no media section.")
    for kind in ("audio", "video"):
        if sum(1 for media in description.media if media.kind == kind) > 1:
            raise SignalingError(
                "unsupported_offer",
                f"The offer has more than one {kind} section; one of each is relayed.",
                fields={"media": kind},
            )
    if not has_kind(description, "audio") and not has_kind(description, "video"):
        raise SignalingError("unsupported_offer", "The offer has no audio or video section.")
    return description


def require_candidates(description: Any) -> None:
    """An offer must carry its ICE candidates (gathered before it is sent): WHIP and WHEP
    here take no trickle ICE (PATCH is 405), so one without any could never connect."""
    if not any(media.ice_candidates for media in description.media):
        raise SignalingError(
            "no_ice_candidates",
            "The offer has no ICE candidates: gather them before sending the offer "
            "(trickle ICE with PATCH is not supported).",
            fields={"sdp": "no a=candidate line"},
        )


def video_capabilities() -> list[Any]:
    return list(RTCRtpSender.getCapabilities("video").codecs)


def choose_video_codec(description: Any) -> Any | None:
    """The first codec of the offer's video section that the relay forwards, as a capability.

    VP8, and H.264 constrained baseline with packetization-mode 1 (aiortc's H.264 codecs).
    None when the offer has no video section or none of these codecs.
    """
    capabilities = [c for c in video_capabilities() if c.mimeType.lower() in RELAYED_VIDEO]
    for media in description.media:
        if media.kind != "video":
            continue
        for offered in media.rtp.codecs:
            for capability in capabilities:
                if is_codec_compatible(capability, offered):
                    return capability
    return None


def describe_codec(codec: Any) -> str:
    """``VP8``, or ``H.264`` with the parameters an offer must match."""
    name = str(codec.mimeType).split("/")[-1]
    if name.lower() != "h264":
        return name
    profile = codec.parameters.get("profile-level-id", "?")
    mode = codec.parameters.get("packetization-mode", "0")
    return f"H.264 (profile-level-id {profile}, packetization-mode {mode})"


def offers_codec(description: Any, codec: Any) -> bool:
    """Whether the offer's video section carries ``codec`` (an H.264 offer must have its
    profile and packetization mode)."""
    return any(
        is_codec_compatible(codec, offered)
        for media in description.media
        if media.kind == "video"
        for offered in media.rtp.codecs
    )


def has_kind(description: Any, kind: str) -> bool:
    return any(media.kind == kind for media in description.media)


def video_preferences(codec: Any) -> list[Any]:
    """Codec preferences that make an answer carry ``codec`` (and its RTX) only."""
    rtx = [c for c in video_capabilities() if c.mimeType.lower() == "video/rtx"]
    return [codec, *rtx]


def audio_preferences() -> list[Any]:
    return [
        c
        for c in RTCRtpSender.getCapabilities("audio").codecs
        if c.mimeType.lower() == "audio/opus"
    ]
