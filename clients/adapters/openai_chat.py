"""An adapter that serves AnswerVQA through an OpenAI-compatible chat-completions API.

vLLM, TGI, llama.cpp and many hospital gateways speak this API. Each question becomes
one ``POST {base_url}/chat/completions`` with the image as a data URL (original bytes,
original media type, base64) and the VLMEvalKit prompt as text; the reply comes back as
free text, from which the evaluator extracts the label with VLMEvalKit's rules.

Only the standard library is used (``urllib`` in the SDK's worker threads). HTTP failures
map to the contract's status codes: 429 -> RESOURCE_EXHAUSTED, 5xx and connection
errors -> UNAVAILABLE, timeouts -> DEADLINE_EXCEEDED, other 4xx -> INVALID_ARGUMENT.
"""

from __future__ import annotations

import base64
import json
import socket
import urllib.error
import urllib.request
from typing import Any

from gmai_eval.clients.sdk import (
    Answer,
    InvalidQuestion,
    Model,
    ModelError,
    Overloaded,
    Question,
    UpstreamTimeout,
    UpstreamUnavailable,
)

_PASSED_PARAMETERS = ("temperature", "max_tokens", "top_p", "seed", "stop")


def vlmevalkit_prompt(question: Question) -> str:
    """The prompt VLMEvalKit's ``ImageMCQDataset.build_prompt`` renders (used when absent)."""
    lines = [f"Question: {question.question}", "Options:"]
    lines += [f"{o.label}. {o.text}" for o in question.options]
    return "\n".join(lines) + "\nPlease select the correct answer from the options above. \n"


class OpenAIChatModel(Model):
    """Answers by calling an OpenAI-compatible ``/chat/completions`` endpoint.

    Args:
        base_url: API root, for example ``http://vllm:8000/v1``.
        model: The model name sent in each request.
        api_key: Sent as ``Authorization: Bearer``; empty sends none.
        timeout_s: Seconds per HTTP call.
        max_tokens: Default ``max_tokens`` (a run's parameters may override it).
        temperature: Default temperature (0: greedy, as evaluations usually want).
        name: Model name reported by GetModelInfo.
        version: Model version reported.
    """

    vendor = "openai-compatible"
    capabilities = ("free_text",)

    def __init__(
        self,
        base_url: str,
        model: str,
        *,
        api_key: str = "",
        timeout_s: float = 120.0,
        max_tokens: int = 256,
        temperature: float = 0.0,
        name: str | None = None,
        version: str = "1",
    ) -> None:
        self.url = base_url.rstrip("/") + "/chat/completions"
        self.model = model
        self.api_key = api_key
        self.timeout_s = timeout_s
        self.defaults: dict[str, Any] = {"max_tokens": max_tokens, "temperature": temperature}
        self.name = name or model
        self.version = version

    def request_body(self, question: Question) -> dict[str, Any]:
        """The JSON body for one question."""
        content: list[dict[str, Any]] = [
            {
                "type": "image_url",
                "image_url": {
                    "url": f"data:{image.media_type or 'image/png'};base64,"
                    + base64.b64encode(image.data).decode("ascii")
                },
            }
            for image in question.images
        ]
        content.append({"type": "text", "text": question.prompt or vlmevalkit_prompt(question)})
        body: dict[str, Any] = {
            "model": self.model,
            "messages": [{"role": "user", "content": content}],
        }
        body.update(self.defaults)
        body.update({k: v for k, v in question.parameters.items() if k in _PASSED_PARAMETERS})
        if isinstance(body.get("max_tokens"), float):  # Struct numbers arrive as floats
            body["max_tokens"] = int(body["max_tokens"])
        if isinstance(body.get("seed"), float):
            body["seed"] = int(body["seed"])
        return body

    def _post(self, body: dict[str, Any]) -> dict[str, Any]:
        headers = {"Content-Type": "application/json", "Accept": "application/json"}
        if self.api_key:
            headers["Authorization"] = f"Bearer {self.api_key}"
        request = urllib.request.Request(
            self.url, data=json.dumps(body).encode(), headers=headers, method="POST"
        )
        try:
            with urllib.request.urlopen(request, timeout=self.timeout_s) as response:
                raw = response.read()
        except urllib.error.HTTPError as exc:
            detail = exc.read(500).decode("utf-8", "replace")
            message = f"{self.url} answered HTTP {exc.code}: {detail}"
            if exc.code == 429:
                raise Overloaded(message) from None
            if exc.code in (408, 504):
                raise UpstreamTimeout(message) from None
            if exc.code >= 500:
                raise UpstreamUnavailable(message) from None
            raise InvalidQuestion(message) from None
        except TimeoutError as exc:
            raise UpstreamTimeout(f"{self.url} did not answer within {self.timeout_s:g} s") from exc
        except urllib.error.URLError as exc:
            if isinstance(exc.reason, TimeoutError | socket.timeout):
                raise UpstreamTimeout(
                    f"{self.url} did not answer within {self.timeout_s:g} s"
                ) from exc
            raise UpstreamUnavailable(f"{self.url} unreachable: {exc.reason}") from exc
        except OSError as exc:  # connection reset and friends
            raise UpstreamUnavailable(f"{self.url} failed: {exc}") from exc
        try:
            parsed = json.loads(raw)
        except ValueError:
            raise ModelError(f"{self.url} returned non-JSON: {raw[:200]!r}") from None
        if not isinstance(parsed, dict):
            raise ModelError(f"{self.url} returned {type(parsed).__name__}, not an object")
        return parsed

    def predict(self, question: Question) -> Answer:
        """Ask the endpoint; return its reply as free text."""
        reply = self._post(self.request_body(question))
        try:
            message = reply["choices"][0]["message"]
            content = message.get("content") or ""
        except (KeyError, IndexError, TypeError, AttributeError):
            raise ModelError(
                f"{self.url} returned no choices[0].message: {str(reply)[:200]}"
            ) from None
        if isinstance(content, list):  # content parts
            content = "".join(p.get("text", "") for p in content if isinstance(p, dict))
        if not isinstance(content, str) or not content.strip():
            refusal = message.get("refusal") if isinstance(message, dict) else None
            if refusal:
                return Answer.refused(str(refusal))
            raise ModelError(f"{self.url} returned an empty completion")
        usage = reply.get("usage") or {}
        return Answer(
            text=content,
            input_tokens=int(usage.get("prompt_tokens") or 0),
            output_tokens=int(usage.get("completion_tokens") or 0),
        )
