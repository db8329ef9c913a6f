"""The livestudio server."""

import warnings

# asyncssh still names DSA keys (which livestudio never accepts), and cryptography warns
# about it at import: several lines of library noise before a command's one-line answer.
warnings.filterwarnings("ignore", message="DSA is deprecated", category=UserWarning)
