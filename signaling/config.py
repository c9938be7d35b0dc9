"""Settings of the WHIP/WHEP relay."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class SignalingConfig:
    """Network and relay settings, built by the app factory from the settings object.

    ice_servers
        STUN/TURN URLs (``stun:host:port``) given to every peer connection and advertised
        to WHIP/WHEP clients in ``Link: <url>; rel="ice-server"`` headers. Empty: no
        server at all (aiortc's own default, a public Google STUN server, is never used).
    ice_host_addresses
        The only local addresses offered as ICE host candidates (``["127.0.0.1"]`` in
        tests). Empty: aioice's default, every non-loopback address of the machine.
    viewer_queue_frames
        Frames one viewer may fall behind before it skips to the next keyframe.
    keyframe_request_interval_s
        At most one keyframe request (RTCP PLI) is sent to the host per interval.
    recording_dir
        When set, each publisher session's stream is muxed (not transcoded) into a file
        there: H.264 in MPEG-TS, VP8 in WebM, with Opus audio.
    turn_username, turn_credential
        Static credentials for every ``turn:``/``turns:`` URL (both or neither).
    turn_secret, turn_ttl_s
        A TURN server's shared secret: each session gets its own credentials, valid for
        ``turn_ttl_s`` (coturn's ``use-auth-secret``; see ``signaling/ice.py``).
    reconnect_grace_s
        How long a host whose connection failed is shown as reconnecting before the
        stream is declared offline.
    publisher_recheck_s
        How often a publisher's right to go on is asked again
        (``ShowAccess.publisher_allowed``): a revoked stream key's session ends within this.
    hls
        Package an H.264 host's stream for HLS (``signaling/hls.py``), once
        ``SignalingService.start(redis)`` gave it a Redis to keep the segments in.
    """

    ice_servers: list[str] = field(default_factory=list)
    ice_host_addresses: list[str] = field(default_factory=list)
    viewer_queue_frames: int = 120
    keyframe_request_interval_s: float = 1.0
    recording_dir: str | None = None
    turn_username: str | None = None
    turn_credential: str | None = None
    turn_secret: str | None = None
    turn_ttl_s: int = 24 * 3600
    reconnect_grace_s: float = 30.0
    publisher_recheck_s: float = 5.0
    hls: bool = True
