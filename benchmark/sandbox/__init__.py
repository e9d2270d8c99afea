"""Submission code in worker processes of its own, in a bubblewrap sandbox or a forkserver."""
