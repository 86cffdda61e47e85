"""`python -m querywarden.cli`: the same command as `querywarden`."""

from . import main

main()
