"""The Gradio chat app (``streaming-engineer ui``)."""

import os
import tempfile
from pathlib import Path

# Set before Gradio is imported, to Gradio's own defaults where it has one:
# - without GRADIO_TEMP_DIR, Gradio resolves its cache path (a realpath walk) for every component it builds,
#   which was a tenth of the server's time per turn;
# - Gradio recomputes a pandas summary of all recorded events after every event, only for its monitoring
#   page (not enabled here); computing it once per 10,000 events removes a cost that grows with uptime.
os.environ.setdefault("GRADIO_TEMP_DIR", str((Path(tempfile.gettempdir()) / "gradio").resolve()))
os.environ.setdefault("GRADIO_ANALYTICS_CACHE_FREQUENCY", "10000")
