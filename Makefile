# The two commands of the README. Both install what they need (Python venv, container engine,
# kind, helm and every image built from source when no registry is reachable).
.PHONY: site test test-quick down

# The main job: a kind cluster on this machine and site.yml against it.
site:
	python3 tools/dev site

# The test command (what .ci/run calls): unit, rendering, module, lint and sanity tests and the
# Molecule kind scenario. Ends with pytest's summary line.
test:
	python3 tools/dev test

# Everything that needs no cluster.
test-quick:
	python3 tools/dev test --no-cluster

down:
	python3 tools/dev down
