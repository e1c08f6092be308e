"""A fact stated again under the external id that names it (a provider's payment id, a
tracking number, a consent id …): not an error, the first outcome is the answer.

The domain raises ``RepeatedFact`` from a guard, before any change; the application answers
with the outcome recorded for the command that first stated the fact, and writes nothing
(as for a repeated ``command_id``).
"""

from __future__ import annotations


class RepeatedFact(Exception):
    """The command repeats the fact first recorded by ``first_command_id``."""

    def __init__(self, first_command_id: str) -> None:
        super().__init__(first_command_id)
        self.first_command_id = first_command_id
