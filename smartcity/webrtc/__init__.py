"""smartcity.webrtc."""
