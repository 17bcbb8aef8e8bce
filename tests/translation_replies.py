"""A translator reply in the kit's four-field format, for tests that judge hand-written replies."""


def reply(expression, result, code, conditions="The numbers given in the text."):
    return (f"**Conditions Needed:**\n{conditions}\n\n**Computation Expression:**\n${expression}$\n\n"
            f"**Computation Result:**\n{result}\n\n**Python Code Snippet:**\n```python\n{code}\n```")
