"""Chat over the model interface: one conversation core (`session`) behind the terminal
(`terminal`), the gradio page (`web`, the `web` extra) and batched generation (`batch`)."""

from tinylm_eval.chat.session import ChatSession, HistoryError, fit_history, reply

__all__ = ["ChatSession", "HistoryError", "fit_history", "reply"]
