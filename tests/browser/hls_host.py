"""A host for the HLS browser tests: numbered H.264 frames (``benches.synthetic``, a
keyframe a second) and Opus audio (aiortc's silence, encoded by aiortc), as a browser
host sends, published over WHIP; prints "published" once answered, then runs SECONDS.

``python -m tests.browser.hls_host WHIP_URL TOKEN ICE_ADDRESS SECONDS``
"""

from __future__ import annotations

import asyncio
import sys

from aiortc import RTCConfiguration, RTCPeerConnection
from aiortc.mediastreams import AudioStreamTrack

from benches.relay import _offer, _prefer_h264
from benches.synthetic import EncodedPatternTrack


async def publish(url: str, token: str, address: str, seconds: float) -> None:
    video = EncodedPatternTrack("h264", 320, 240, 30, gop=30, bitrate=600_000)
    pc = RTCPeerConnection(RTCConfiguration(iceServers=[]))
    _prefer_h264(pc.addTransceiver(video, direction="sendonly"))
    pc.addTransceiver(AudioStreamTrack(), direction="sendonly")
    await _offer(url, pc, [address], token)
    print("published", flush=True)
    await asyncio.sleep(seconds)
    await pc.close()


if __name__ == "__main__":
    asyncio.run(publish(sys.argv[1], sys.argv[2], sys.argv[3], float(sys.argv[4])))
