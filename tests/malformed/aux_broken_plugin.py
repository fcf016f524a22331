"""A plugin that fails at import (for the malformed-experiment tests)."""

1 / 0
