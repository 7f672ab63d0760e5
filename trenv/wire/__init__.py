"""The wire schema of the trenv API: pydantic models shared by both ends.

The web service validates request bodies with these models and the code inside the container
(``trenv.lab`` and its server extension) builds and checks the same bodies with them, so a
limit such as the 300-character title is defined once. Only pydantic and the standard
library are imported here: this package is installed in the notebook image.
"""
