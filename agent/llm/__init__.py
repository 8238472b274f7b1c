"""The model backend: endpoint selection, in-role tool loop, grounding, value extraction.

With no key in the environment ``chat_model()`` is ``None`` and every node
answers with the offline engine.
"""

from agent.llm.backend import chat_model, load_config
from agent.llm.extract import extract_value

__all__ = ["chat_model", "extract_value", "load_config"]
