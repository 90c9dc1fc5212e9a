"""Adapters that put an existing model API behind AnswerVQA (``openai_chat``)."""
