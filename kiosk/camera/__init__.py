"""Frame sources (OpenCV: USB camera, stream URL, video file; picamera2 on a Pi) and the capture thread."""
