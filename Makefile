# Quick start: `make lab` runs the main job, `make test` runs every test. Both install what they need.
SHELL := /bin/bash
NODE := node_modules/.bin/node
TRELLIS := bin/trellis

.PHONY: images setup test test-unit test-integration test-e2e check lab lab-down bench bench-cni bench-ipam bench-policy bench-scale bench-operator bench-bgp bench-multinet bench-containerd2

setup:
	@bash hack/setup.sh

check: setup
	$(NODE) node_modules/typescript/bin/tsc -p tsconfig.json --noEmit
	$(NODE) node_modules/eslint/bin/eslint.js .
	$(NODE) node_modules/prettier/bin/prettier.cjs --check . --log-level warn

test: setup check
	$(NODE) node_modules/vitest/vitest.mjs run

test-unit: setup
	$(NODE) node_modules/vitest/vitest.mjs run --project unit

test-integration: setup
	$(NODE) node_modules/vitest/vitest.mjs run --project integration

test-e2e: setup
	$(NODE) node_modules/vitest/vitest.mjs run --project e2e

# A real cluster: 3 nodes of kubelet + containerd, Trellis installed by helm, a Deployment over the
# nodes, the connectivity matrix from real pods (docs/lab.md). `lab up` builds what it lacks.
LAB_DIR = $(or $(TRELLIS_LAB_DIR),$(CURDIR)/.lab)
lab: setup
	$(TRELLIS) lab up --real-nodes --nodes 3 --backend vxlan --force
	$(TRELLIS) lab demo
	KUBECONFIG= $(TRELLIS) connectivity-test
	@echo
	@echo "The lab is up: 3 nodes (kubelet + containerd), Trellis installed by helm, Deployment demo over the nodes."
	@echo "  export KUBECONFIG=$(LAB_DIR)/controlplane/kubeconfig"
	@echo "  ~/.cache/trellis/bin/kubectl get nodes,pods -A -o wide"
	@echo "  bin/trellis status; bin/trellis ipam show; bin/trellis connectivity-test"
	@echo "  make lab-down      # tears it all down (logs stay in $(LAB_DIR))"

images: setup
	bash hack/build-cni.sh
	$(NODE) images/build.ts

lab-down:
	$(TRELLIS) lab down

bench: bench-cni bench-ipam bench-operator bench-multinet

# Pod netns and an agent in the root netns: holds the lock every netns user takes.
bench-cni: setup
	flock /tmp/trellis-e2e.lock $(NODE) test/bench/cni-bench.ts

bench-ipam: setup
	$(NODE) test/bench/ipam-bench.ts

# A 10-node lab and 1,000 pods (figures, not a test); holds the lock every netns user takes.
bench-scale: setup
	flock /tmp/trellis-e2e.lock $(NODE) test/bench/scale-bench.ts

# API requests/minute of the operator and one agent on an idle 100-node cluster (needs root: a netns).
bench-operator: setup
	flock /tmp/trellis-e2e.lock $(NODE) test/bench/operator-bench.ts

# BGP convergence/withdraw/scale figures on real BIRD in netns (holds the e2e lock; see docs/bgp.md).
bench-bgp: setup
	flock /tmp/trellis-e2e.lock $(NODE) test/bench/bgp-bench.ts

# (a) compile/program in a netns; (b)-(d) in a two-node lab, ours then kube-router (built first,
# outside the lock, from its Go module: ~2 min cold; see docs/policy.md).
bench-policy: setup
	nice -n 10 bash hack/build-kube-router.sh >/dev/null
	flock /tmp/trellis-e2e.lock $(NODE) test/bench/policy-bench.ts

# eth0 + 2 macvlan attachments, ours vs the reference chain with Whereabouts (one-node lab, needs root).
bench-multinet: setup
	flock /tmp/trellis-e2e.lock $(NODE) test/bench/multinet-bench.ts

# Real nodes on containerd 2.x built from its Go module (minutes cold): what the runtime sends our
# plugin (ADD, STATUS, GC), counted by the agents (holds the e2e lock; see docs/real-nodes.md).
bench-containerd2: setup
	bash hack/setup-nodes.sh
	bash hack/build-containerd2.sh
	flock /tmp/trellis-e2e.lock $(NODE) test/bench/containerd2-bench.ts
