"""The HTTP API's typed bodies (pydantic models), so that FastAPI documents them at `/docs` and `/openapi.json`.

`gti serve` validates a request body with `RecommendRequest` (strict types: `"10"` is not a `k`)
and turns the first validation error into the same one-line message `gti recommend` gives
(`one_line`). Needs pydantic, which FastAPI brings (`pip install 'gti[serve]'`).
"""

from pydantic import BaseModel, ConfigDict, Field, StrictBool, StrictInt, StrictStr, ValidationError

from gti.catalog import MAX_K
from gti.data.files import shown

FIELDS = ("history", "k", "exclude_history", "user_id")


class RecommendRequest(BaseModel):
    """One user's history; the answer is the top `k` catalog items for its next item."""

    model_config = ConfigDict(extra="forbid", json_schema_extra={
        "examples": [{"history": ["B000C1Z1HE", "B00021C1LI"], "k": 10, "exclude_history": False, "user_id": "A1"}]})

    history: list[StrictStr | StrictInt] = Field(
        min_length=1, description="Catalog item ids, oldest first (integers are read as strings); the prompt uses the "
                                  "last data.max_history, then prompts.history, of them, as evaluation does.")
    k: StrictInt = Field(10, ge=1, le=MAX_K, description="How many items to return (the server may allow fewer: "
                                                          "`gti serve --max-k`).")
    exclude_history: StrictBool = Field(False, description="Leave out the items of the history.")
    user_id: StrictStr | StrictInt | None = Field(None, description="Echoed back in the answer.")


class RecommendedItem(BaseModel):
    item_id: str
    title: str
    score: float = Field(description="Total log-probability of the item's semantic-id tokens under the model.")


class RecommendResponse(BaseModel):
    """Best first, as `gti recommend --json` prints them."""

    items: list[RecommendedItem]
    user_id: StrictStr | StrictInt | None = Field(None, description="The request's user_id, when it had one.")


class Health(BaseModel):
    status: str = Field(description="`ok` while the server answers.")
    items: int = Field(description="Catalog size.")
    requests: int = Field(description="Requests answered since the start.")
    batches: int = Field(description="Beam searches run for them (requests arriving together share one).")
    max_batch: int


class ErrorMessage(BaseModel):
    """A 4xx or 5xx answer: one line naming the field (or the unknown id) and what was expected."""

    error: str


def _json_type(value: object) -> str:
    names = {list: "array", str: "string", int: "number", float: "number", bool: "boolean", type(None): "null"}
    return names.get(type(value), type(value).__name__)


def one_line(error: ValidationError, max_k: int = MAX_K) -> tuple[int, str]:
    """(HTTP status, message) for the first problem of a request body: 400 when it is not a JSON object, else 422."""
    problems = sorted(error.errors(), key=lambda e: {"json_invalid": 0, "extra_forbidden": 1, "missing": 2}.get(e["type"], 3))
    first = problems[0]
    kind, where, value = first["type"], first["loc"], first.get("input")
    if kind == "json_invalid":
        return 400, "the body is not valid JSON"
    if not where:
        return 400, f"expected a JSON object, got {_json_type(value)}"
    name = where[0]
    if kind == "extra_forbidden":
        return 422, f"unknown field {name!r}; expected {', '.join(FIELDS)}"
    if kind == "missing":
        return 422, f"missing field {name!r}"
    if name == "k":
        return 422, f"k: expected an integer from 1 to {max_k}, got {shown(value)}"
    if name == "history" and len(where) > 1:
        return 422, f"history: item ids must be strings, got {shown(value)}"
    if name == "history":
        return 422, f"history: expected a non-empty list of item ids, got {shown(value)}"
    if name == "exclude_history":
        return 422, f"exclude_history: expected true or false, got {shown(value)}"
    if name == "user_id":
        return 422, f"user_id: expected a string or an integer, got {shown(value)}"
    return 422, f"{'.'.join(map(str, where))}: {first['msg']}"
