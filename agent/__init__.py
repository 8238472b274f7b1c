"""The Streaming Engineer role as a LangGraph state machine."""
