"""A GStreamer webrtcbin WHIP publisher or WHEP viewer, for the interop tests.

Run by Debian's ``/usr/bin/python3`` (python3-gi, python3-gst-1.0, gir1.2-gst-plugins-bad-1.0;
the project's venv cannot import ``gi``), with the standard library and ``gi`` only. The
WHIP/WHEP exchange is RFC 9725's, written here: every ICE candidate is gathered first (no
trickle), the offer is POSTed as ``application/sdp`` with the Bearer token, a ``201`` brings
the answer and the session's ``Location``, and the session is DELETEd at the end.

webrtcbin is used unmodified: its own certificate (RSA in 1.22) and DTLS settings.

``publish``: ``videotestsrc`` (a scrolling SMPTE pattern, 640x480 at 30 fps) -> x264enc
(constrained baseline, packetization-mode 1) or vp8enc at about 1.5 Mbit/s with one keyframe
per ``--keyframe-s`` -> payloader -> webrtcbin sendonly. Keyframe requests (upstream
GstForceKeyUnit events from webrtcbin's PLI/FIR handling) are dropped before the encoder, as
OBS ignores them, so the relay's cache is the only keyframe source for its viewers. When
the connection is up the publisher itself asks its encoder for one keyframe (a stream
starts with one; what was encoded before may never have reached the relay). It prints
``{"event": "first_keyframe", ...}`` when that keyframe is sent, and one result line when
it stops (SIGTERM/SIGINT or ``--duration``).

``play``: webrtcbin recvonly (video), depayload and decode (avdec_h264 or openh264dec for
H.264, vp8dec for VP8), count the decoded frames; ``--duration`` seconds after connecting it
reads webrtcbin's ``get-stats`` and prints one result line.

Every line on stdout is one JSON object; times are seconds since the process started.
"""

from __future__ import annotations

import argparse
import http.client
import itertools
import json
import signal
import sys
import time
import urllib.parse
from typing import Any

import gi  # type: ignore[import-not-found]

gi.require_version("Gst", "1.0")
gi.require_version("GstSdp", "1.0")
gi.require_version("GstVideo", "1.0")
gi.require_version("GstWebRTC", "1.0")
from gi.repository import GLib, Gst, GstSdp, GstVideo, GstWebRTC  # type: ignore[import-not-found]  # noqa: E402

START = time.monotonic()
PAYLOAD_TYPE = 96
RTP_CAPS = {
    "h264": (
        "application/x-rtp,media=video,encoding-name=H264,clock-rate=90000,"
        f"payload={PAYLOAD_TYPE},packetization-mode=(string)1"
    ),
    "vp8": (
        f"application/x-rtp,media=video,encoding-name=VP8,clock-rate=90000,payload={PAYLOAD_TYPE}"
    ),
}
DECODERS = {"h264": ("avdec_h264", "openh264dec"), "vp8": ("vp8dec",)}


def now() -> float:
    return round(time.monotonic() - START, 4)


def emit(record: dict[str, Any]) -> None:
    print(json.dumps(record), flush=True)


def enum_name(value: Any) -> str:
    return str(value.value_nick)


def flatten(structure: Any, prefix: str = "") -> dict[str, Any]:
    """A stats structure's plain fields; the nested rtpsource stats as ``source.<name>``."""
    fields: dict[str, Any] = {}

    def keep(quark: Any, item: Any) -> bool:
        name = GLib.quark_to_string(quark)
        if hasattr(item, "value_nick"):  # an enum (an int too): the stats' type
            fields[prefix + name] = enum_name(item)
        elif isinstance(item, bool | int | float | str):
            fields[prefix + name] = item
        elif isinstance(item, Gst.Structure) and name == "gst-rtpsource-stats":
            fields.update(flatten(item, "source."))
        return True

    structure.foreach(keep)
    return fields


class WhipWhepSession:
    """The HTTP side of RFC 9725: POST the offer, keep the Location, DELETE at the end."""

    def __init__(self, url: str, token: str | None) -> None:
        self.url = url
        self.token = token
        self.location: str | None = None

    def _request(self, method: str, url: str, body: str | None = None) -> tuple[int, str, Any]:
        parts = urllib.parse.urlsplit(url)
        conn = http.client.HTTPConnection(parts.hostname or "", parts.port or 80, timeout=10)
        headers = {}
        if self.token is not None:
            headers["Authorization"] = f"Bearer {self.token}"
        if body is not None:
            headers["Content-Type"] = "application/sdp"
        try:
            path = parts.path + (f"?{parts.query}" if parts.query else "")
            conn.request(method, path, body=body, headers=headers)
            response = conn.getresponse()
            return response.status, response.read().decode(), response.headers
        finally:
            conn.close()

    def offer(self, sdp: str) -> str:
        status, body, headers = self._request("POST", self.url, sdp)
        if status != 201:
            raise RuntimeError(f"offer refused: {status} {body}")
        if headers.get("Content-Type", "").split(";")[0] != "application/sdp":
            raise RuntimeError(f"the answer is not application/sdp: {headers.get('Content-Type')}")
        location = headers.get("Location")
        if not location:
            raise RuntimeError("201 without a Location")
        self.location = urllib.parse.urljoin(self.url, location)
        return body

    def delete(self) -> int | None:
        if self.location is None:
            return None
        location, self.location = self.location, None
        status, _, _ = self._request("DELETE", location)
        return status


class Client:
    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        self.loop = GLib.MainLoop()
        self.pipeline = Gst.Pipeline.new("client")
        self.webrtc = Gst.ElementFactory.make("webrtcbin", "webrtc")
        self.webrtc.set_property("bundle-policy", GstWebRTC.WebRTCBundlePolicy.MAX_BUNDLE)
        self.pipeline.add(self.webrtc)
        self.session = WhipWhepSession(args.url, args.token)
        self.result: dict[str, Any] = {"event": "result", "mode": args.mode, "codec": args.codec}
        self.states: dict[str, list[str]] = {"connection": [], "ice": [], "dtls": []}
        self.connected_at: float | None = None
        self.offered = False
        self.finished = False
        self.error: str | None = None
        self.webrtc.connect("on-negotiation-needed", self._on_negotiation_needed)
        self.webrtc.connect("notify::ice-gathering-state", self._on_gathering)
        self.webrtc.connect("notify::connection-state", self._on_connection_state)
        self.webrtc.connect("notify::ice-connection-state", self._on_ice_state)

    # -- states --------------------------------------------------------------------------------

    def _record(self, kind: str, state: str) -> None:
        if not self.states[kind] or self.states[kind][-1] != state:
            self.states[kind].append(state)

    def _on_ice_state(self, element: Any, _pspec: Any) -> None:
        self._record("ice", enum_name(element.get_property("ice-connection-state")))

    def _on_connection_state(self, element: Any, _pspec: Any) -> None:
        state = element.get_property("connection-state")
        self._record("connection", enum_name(state))
        if state == GstWebRTC.WebRTCPeerConnectionState.CONNECTED and self.connected_at is None:
            self.connected_at = now()
            GLib.idle_add(self.on_connected)
        elif state == GstWebRTC.WebRTCPeerConnectionState.FAILED:
            GLib.idle_add(self.fail, "the peer connection failed")

    def _watch_dtls(self) -> None:
        transceiver = self.webrtc.emit("get-transceiver", 0)
        transport = transceiver.get_property("receiver").get_property("transport")
        if transport is None:
            return
        transport.connect(
            "notify::state",
            lambda t, _p: self._record("dtls", enum_name(t.get_property("state"))),
        )

    def on_connected(self) -> bool:
        return False

    # -- the offer -------------------------------------------------------------------------------

    def _on_negotiation_needed(self, element: Any) -> None:
        promise = Gst.Promise.new_with_change_func(self._on_offer_created, None)
        element.emit("create-offer", None, promise)

    def _on_offer_created(self, promise: Any, _data: Any) -> None:
        reply = promise.get_reply()
        if reply is None or not reply.has_field("offer"):
            error = reply.get_value("error") if reply is not None else None
            message = error.message if error is not None else "no offer"
            GLib.idle_add(self.fail, f"create-offer: {message}")
            return
        self.webrtc.emit("set-local-description", reply.get_value("offer"), None)

    def _on_gathering(self, element: Any, _pspec: Any) -> None:
        complete = GstWebRTC.WebRTCICEGatheringState.COMPLETE
        if element.get_property("ice-gathering-state") == complete and not self.offered:
            self.offered = True
            GLib.idle_add(self._send_offer)

    def _send_offer(self) -> bool:
        offer = self.webrtc.get_property("local-description").sdp.as_text()
        self.result["offer_candidates"] = [
            line[len("a=candidate:") :]
            for line in offer.splitlines()
            if line.startswith("a=candidate:")
        ]
        try:
            answer_text = self.session.offer(offer)
        except (OSError, RuntimeError) as exc:
            self.fail(str(exc))
            return False
        self.result["answered_at"] = now()
        self.result["answer_setup"] = [
            line for line in answer_text.splitlines() if line.startswith("a=setup:")
        ]
        _, sdp = GstSdp.SDPMessage.new_from_text(answer_text)
        answer = GstWebRTC.WebRTCSessionDescription.new(GstWebRTC.WebRTCSDPType.ANSWER, sdp)
        self.webrtc.emit("set-remote-description", answer, None)
        self._watch_dtls()
        return False

    # -- running and stopping ------------------------------------------------------------------

    def fail(self, error: str) -> bool:
        if self.error is None:
            self.error = error
        self.finish()
        return False

    def finish(self) -> bool:
        """Read the stats, DELETE the session, print the result and quit (once)."""
        if self.finished:
            return False
        self.finished = True
        promise = Gst.Promise.new_with_change_func(self._on_stats, None)
        self.webrtc.emit("get-stats", None, promise)
        GLib.timeout_add(2000, self._end)  # should the stats never come
        return False

    def _on_stats(self, promise: Any, _data: Any) -> None:
        reply = promise.get_reply()
        if reply is not None:
            if self.args.dump_stats:
                print(reply.to_string(), file=sys.stderr)
            self.read_stats(reply)
        GLib.idle_add(self._end)

    def read_stats(self, reply: Any) -> None:
        pass

    def _end(self) -> bool:
        if self.loop.is_running():
            try:
                self.result["delete_status"] = self.session.delete()
            except OSError as exc:
                self.result["delete_status"] = f"error: {exc}"
            self.loop.quit()
        return False

    def run(self) -> int:
        bus = self.pipeline.get_bus()
        bus.add_signal_watch()
        bus.connect("message::error", self._on_bus_error)
        for signum in (signal.SIGTERM, signal.SIGINT):
            GLib.unix_signal_add(GLib.PRIORITY_DEFAULT, signum, self.finish)
        GLib.timeout_add(int(self.args.timeout * 1000), self.fail, "timed out")
        if self.pipeline.set_state(Gst.State.PLAYING) == Gst.StateChangeReturn.FAILURE:
            self.error = "the pipeline did not start"
            self.finished = True
        else:
            self.loop.run()
        self.pipeline.set_state(Gst.State.NULL)
        self.result.update(
            states=self.states,
            connected_at=self.connected_at,
            ended_at=now(),
            error=self.error,
        )
        emit(self.result)
        return 0 if self.error is None else 1

    def _on_bus_error(self, _bus: Any, message: Any) -> None:
        error, debug = message.parse_error()
        self.fail(f"{message.src.get_name()}: {error.message} ({debug})")

    @staticmethod
    def stats_of_type(reply: Any, kind: str) -> list[dict[str, Any]]:
        found: list[dict[str, Any]] = []

        def visit(_field: Any, value: Any) -> bool:
            if isinstance(value, Gst.Structure):
                fields = flatten(value)
                if fields.get("type") == kind:
                    found.append(fields)
            return True

        reply.foreach(visit)
        return found


class Publisher(Client):
    def __init__(self, args: argparse.Namespace) -> None:
        super().__init__(args)
        self.keyframe_requests_dropped = 0
        self.first_keyframe_at: float | None = None
        self.frames_sent = 0
        self.keyframes_sent = 0  # since the connection is up
        self.encoder = self._build()

    def _build(self) -> Any:
        fps = 30
        key_frames = max(1, round(self.args.keyframe_s * fps))
        if self.args.codec == "h264":
            encoder = (
                # threads=1: one slice a picture. With zerolatency's sliced threads,
                # rtph264pay (config-interval=-1) puts SPS/PPS before each IDR slice and
                # openh264dec decodes nothing (avdec_h264 copes), relay or not.
                "x264enc name=encoder tune=zerolatency speed-preset=ultrafast threads=1 "
                "bitrate=1500 "
                f"key-int-max={key_frames} ! video/x-h264,profile=constrained-baseline ! "
                f"rtph264pay config-interval=-1 aggregate-mode=zero-latency pt={PAYLOAD_TYPE}"
            )
        else:
            encoder = (
                "vp8enc name=encoder deadline=1 target-bitrate=1500000 "
                f"keyframe-max-dist={key_frames} ! "
                f"rtpvp8pay picture-id-mode=15-bit pt={PAYLOAD_TYPE}"
            )
        source = Gst.parse_bin_from_description(
            "videotestsrc is-live=true pattern=smpte horizontal-speed=4 ! "
            f"video/x-raw,width=640,height=480,framerate={fps}/1 ! "
            f"queue ! {encoder} ! "
            "capsfilter name=rtpcaps",
            True,
        )
        source.get_by_name("rtpcaps").set_property(
            "caps", Gst.Caps.from_string(RTP_CAPS[self.args.codec])
        )
        self.pipeline.add(source)
        encoder_src = source.get_by_name("encoder").get_static_pad("src")
        encoder_src.add_probe(Gst.PadProbeType.EVENT_UPSTREAM, self._drop_keyframe_requests)
        encoder_src.add_probe(Gst.PadProbeType.BUFFER, self._on_encoded)
        sink = self.webrtc.request_pad_simple("sink_%u")
        source.get_static_pad("src").link(sink)
        transceiver = sink.get_property("transceiver")
        transceiver.set_property("direction", GstWebRTC.WebRTCRTPTransceiverDirection.SENDONLY)
        return source.get_by_name("encoder")

    def _drop_keyframe_requests(self, _pad: Any, info: Any) -> Any:
        event = info.get_event()
        structure = event.get_structure() if event is not None else None
        if structure is not None and structure.get_name() == "GstForceKeyUnit":
            self.keyframe_requests_dropped += 1
            return Gst.PadProbeReturn.DROP
        return Gst.PadProbeReturn.OK

    def _on_encoded(self, _pad: Any, info: Any) -> Any:
        buffer = info.get_buffer()
        self.frames_sent += 1
        keyframe = not buffer.has_flags(Gst.BufferFlags.DELTA_UNIT)
        if keyframe and self.connected_at is not None:
            self.keyframes_sent += 1
        if keyframe and self.connected_at is not None and self.first_keyframe_at is None:
            self.first_keyframe_at = now()
            emit({"event": "first_keyframe", "t": self.first_keyframe_at})
        return Gst.PadProbeReturn.OK

    def on_connected(self) -> bool:
        # A stream starts with a keyframe (what was encoded before the connection was up
        # may never have reached the relay); the encoder's next one is an interval later.
        self.encoder.get_static_pad("sink").send_event(
            GstVideo.video_event_new_downstream_force_key_unit(
                Gst.CLOCK_TIME_NONE, Gst.CLOCK_TIME_NONE, Gst.CLOCK_TIME_NONE, True, 1
            )
        )
        if self.args.duration:
            GLib.timeout_add(int(self.args.duration * 1000), self.finish)
        return False

    def read_stats(self, reply: Any) -> None:
        outbound = self.stats_of_type(reply, "outbound-rtp")
        self.result["packets_sent"] = sum(int(s.get("packets-sent", 0)) for s in outbound)
        self.result["pli_received"] = sum(int(s.get("pli-count", 0)) for s in outbound)
        self.result["nack_received"] = sum(int(s.get("nack-count", 0)) for s in outbound)

    def _end(self) -> bool:
        self.result.update(
            first_keyframe_at=self.first_keyframe_at,
            frames_sent=self.frames_sent,
            keyframes_sent=self.keyframes_sent,
            keyframe_requests_dropped=self.keyframe_requests_dropped,
        )
        return super()._end()


class Player(Client):
    def __init__(self, args: argparse.Namespace) -> None:
        super().__init__(args)
        self.frame_times: list[float] = []
        self.decoder_name = args.decoder or DECODERS[args.codec][0]
        caps = Gst.Caps.from_string(self.offered_caps())
        self.webrtc.emit("add-transceiver", GstWebRTC.WebRTCRTPTransceiverDirection.RECVONLY, caps)
        self.webrtc.connect("pad-added", self._on_pad_added)

    def offered_caps(self) -> str:
        """VP8, or H.264 packetization-mode 1 with each of ``--h264-profile-level-ids``."""
        if self.args.codec == "vp8":
            return RTP_CAPS["vp8"]
        base = RTP_CAPS["h264"].replace(f"payload={PAYLOAD_TYPE}", "payload={}")
        ids = [i for i in self.args.h264_profile_level_ids.split(",") if i]
        return ";".join(
            base.format(PAYLOAD_TYPE + n) + f",profile-level-id=(string){profile_level_id}"
            for n, profile_level_id in enumerate(ids)
        )

    def _on_pad_added(self, _element: Any, pad: Any) -> None:
        if pad.get_direction() != Gst.PadDirection.SRC:
            return
        if self.args.codec == "h264":
            chain = f"rtph264depay ! h264parse ! {self.decoder_name} name=decoder"
        else:
            chain = f"rtpvp8depay ! {self.decoder_name} name=decoder"
        bin_ = Gst.parse_bin_from_description(f"queue ! {chain} ! fakesink sync=false", True)
        self.pipeline.add(bin_)
        bin_.sync_state_with_parent()
        bin_.get_by_name("decoder").get_static_pad("src").add_probe(
            Gst.PadProbeType.BUFFER, self._on_decoded
        )
        pad.link(bin_.get_static_pad("sink"))

    def _on_decoded(self, _pad: Any, _info: Any) -> Any:
        self.frame_times.append(time.monotonic() - START)
        return Gst.PadProbeReturn.OK

    def on_connected(self) -> bool:
        GLib.timeout_add(int(self.args.duration * 1000), self.finish)
        return False

    def read_stats(self, reply: Any) -> None:
        inbound = self.stats_of_type(reply, "inbound-rtp")
        self.result["packets_received"] = sum(int(s.get("packets-received", 0)) for s in inbound)
        self.result["packets_lost"] = sum(int(s.get("packets-lost", 0)) for s in inbound)
        self.result["nack_sent"] = sum(int(s.get("nack-count", 0)) for s in inbound)
        self.result["pli_sent"] = sum(int(s.get("pli-count", 0)) for s in inbound)
        self.result["inbound_rtp"] = inbound

    def _end(self) -> bool:
        times = self.frame_times
        gaps = [b - a for a, b in itertools.pairwise(times)]
        self.result.update(
            decoder=self.decoder_name,
            frames_decoded=len(times),
            first_frame_at=round(times[0], 4) if times else None,
            largest_gap_s=round(max(gaps), 4) if gaps else None,
        )
        return super()._end()


ELEMENTS = (
    "webrtcbin", "nicesrc", "dtlssrtpenc", "srtpenc", "videotestsrc", "x264enc",
    "vp8enc", "rtph264pay", "rtpvp8pay", "rtph264depay", "rtpvp8depay", "h264parse",
    "avdec_h264", "openh264dec", "vp8dec", "fakesink",
)  # fmt: skip


def check() -> int:
    """Print the GStreamer version and the elements the tests need that are missing."""
    Gst.init(None)
    missing = [name for name in ELEMENTS if Gst.ElementFactory.find(name) is None]
    emit({"event": "check", "version": Gst.version_string(), "missing": missing})
    return 1 if missing else 0


def main() -> int:
    if sys.argv[1:] == ["check"]:
        return check()
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("mode", choices=("publish", "play"))
    parser.add_argument("url", help="the WHIP or WHEP endpoint")
    parser.add_argument("--token", help="the Bearer token")
    parser.add_argument("--codec", choices=("h264", "vp8"), default="h264")
    parser.add_argument("--decoder", help="play: the decoder element (avdec_h264 by default)")
    parser.add_argument(
        "--h264-profile-level-ids",
        default="42e01f,42001f",
        help="play: the H.264 profiles offered, in order (Chromium offers both)",
    )
    parser.add_argument("--keyframe-s", type=float, default=10.0, help="publish: GOP length")
    parser.add_argument("--duration", type=float, default=0.0, help="seconds after connecting")
    parser.add_argument("--dump-stats", action="store_true", help="print get-stats to stderr")
    parser.add_argument("--timeout", type=float, default=60.0, help="give up after this")
    args = parser.parse_args()
    Gst.init(None)
    if args.mode == "play" and not args.duration:
        parser.error("play needs --duration")
    client = Publisher(args) if args.mode == "publish" else Player(args)
    return client.run()


if __name__ == "__main__":
    sys.exit(main())
