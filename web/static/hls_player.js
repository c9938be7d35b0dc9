// The viewer page's hls.js settings, one JSON object (benches/hls.py reads it and measures
// glass to glass with it): two target durations (~2 s) behind the live edge, playing up to
// 1.5x fast to get back there after a late start or a stall.
export const HLS_PLAYER = {"lowLatencyMode": true, "liveSyncDurationCount": 2, "maxLiveSyncPlaybackRate": 1.5, "backBufferLength": 30};
