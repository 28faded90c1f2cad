// docker-compose.yml (+ docker-compose.override.yml) and the Dockerfile: the files are valid
// against the compose specification (dclint's bundled schema, checked with ajv), and the cluster
// rules hold that no schema can see: the worker scales, finds the coordinator by service name,
// mounts no data (it reads its rows from the coordinator's /data),
// waits for it to be healthy, restarts only on failure, never pulls the image the coordinator
// builds, the token never appears in the files or the image, and the main file stays loadable by
// Swarm's Compose v3 loader (docker stack deploy).

import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Ajv } from 'ajv';
import addFormatsModule from 'ajv-formats';
import { describe, expect, it } from 'vitest';
import { parse } from 'yaml';

const REPO = fileURLToPath(new URL('../..', import.meta.url));
const COMPOSE_TEXT = readFileSync(join(REPO, 'docker-compose.yml'), 'utf8');
const OVERRIDE_TEXT = readFileSync(join(REPO, 'docker-compose.override.yml'), 'utf8');
const DOCKERFILE = readFileSync(join(REPO, 'Dockerfile'), 'utf8');
/** The port the coordinator listens on inside its container. */
const COORDINATOR_PORT = 8787;
const SECRET_TARGET = '/run/secrets/dpt_token';

type Doc = Record<string, unknown>;

function isRecord(value: unknown): value is Doc {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function loadCompose(text: string): Doc {
  const doc: unknown = parse(text, { merge: true });
  if (!isRecord(doc)) throw new Error('docker-compose.yml is not a mapping');
  return doc;
}

function service(doc: Doc, name: string): Doc {
  const services = doc.services;
  const found = isRecord(services) ? services[name] : undefined;
  return isRecord(found) ? found : {};
}

/** A service's environment as a map, from either the mapping or the `KEY=value` list form. */
function environmentOf(svc: Doc): Map<string, string> {
  const env = new Map<string, string>();
  const raw = svc.environment;
  if (Array.isArray(raw)) {
    for (const entry of raw) {
      const text = String(entry);
      const equals = text.indexOf('=');
      env.set(equals < 0 ? text : text.slice(0, equals), equals < 0 ? '' : text.slice(equals + 1));
    }
  } else if (isRecord(raw)) {
    for (const [key, value] of Object.entries(raw)) env.set(key, value === null ? '' : String(value));
  }
  return env;
}

/** Names of the secrets a service mounts (short or long syntax). */
function secretsOf(svc: Doc): string[] {
  const raw = svc.secrets;
  if (!Array.isArray(raw)) return [];
  return raw.map((entry) => (isRecord(entry) ? String(entry.source) : String(entry)));
}

/** depends_on in the mapping form: the list form means condition service_started. */
function dependsOnMapping(value: unknown): Doc {
  if (Array.isArray(value)) return Object.fromEntries(value.map((name) => [String(name), { condition: 'service_started' }]));
  return isRecord(value) ? value : {};
}

/** What `docker compose` loads from a main file and an override: mappings merge, depends_on by service. */
function mergeCompose(base: Doc, override: Doc): Doc {
  const merged: Doc = { ...base };
  for (const [key, value] of Object.entries(override)) {
    const current = merged[key];
    if (key === 'depends_on') merged[key] = { ...dependsOnMapping(current), ...dependsOnMapping(value) };
    else if (isRecord(current) && isRecord(value)) merged[key] = mergeCompose(current, value);
    else merged[key] = value;
  }
  return merged;
}

/** The container ports a service publishes, with their mode (short syntax: ingress). */
function publishedPorts(svc: Doc): { target: string; mode: string }[] {
  if (!Array.isArray(svc.ports)) return [];
  return svc.ports.map((port) => {
    if (isRecord(port)) return { target: String(port.target), mode: String(port.mode ?? 'ingress') };
    return { target: String(port).split(':').at(-1)?.split('/')[0] ?? '', mode: 'ingress' };
  });
}

/** What Swarm's Compose v3 loader (docker stack deploy) rejects, or accepts and then fails on. */
function swarmProblems(base: Doc): string[] {
  const problems: string[] = [];
  if ('name' in base) problems.push('a top-level name (the v3 loader rejects it)');
  const services = isRecord(base.services) ? base.services : {};
  for (const [name, svc] of Object.entries(services)) {
    if (!isRecord(svc)) continue;
    if (svc.depends_on !== undefined && !Array.isArray(svc.depends_on)) problems.push(`${name}: depends_on in the long form (the v3 loader needs a list)`);
    if ('container_name' in svc) problems.push(`${name}: container_name (Swarm ignores it)`);
    // pull_policy is Compose-spec only (not in the v3 format): it lives in docker-compose.override.yml.
    if ('pull_policy' in svc) problems.push(`${name}: pull_policy (not part of the Compose v3 format)`);
    const deploy = isRecord(svc.deploy) ? svc.deploy : {};
    if (deploy.endpoint_mode === 'dnsrr' && publishedPorts(svc).some((port) => port.mode !== 'host')) {
      problems.push(`${name}: endpoint_mode dnsrr with an ingress port (Swarm refuses the pair)`);
    }
  }
  return problems;
}

/** `${NAME:-default}` with a non-empty default: the value comes from the environment, with a fallback. */
const INTERPOLATED_WITH_DEFAULT = /^\$\{([A-Z0-9_]+):-[^}]+\}$/;

/** The training flags the coordinator must take from the environment. */
const TRAINING_FLAGS = ['DPT_DATA', 'DPT_EPOCHS', 'DPT_BATCH_SIZE', 'DPT_LR', 'DPT_WORKERS', 'DPT_VAL_SPLIT', 'DPT_STEP_TIMEOUT'];

/** Every rule a scalable, Swarm-deployable dpt cluster file must keep; returns the broken ones. */
function clusterProblems(doc: Doc, text: string): string[] {
  const problems: string[] = [];
  const coordinator = service(doc, 'coordinator');
  const worker = service(doc, 'worker');
  if (Object.keys(coordinator).length === 0) problems.push('no coordinator service');
  if (Object.keys(worker).length === 0) problems.push('no worker service');

  // The worker scales: nothing in it may be unique to one container.
  if ('container_name' in worker) problems.push('worker has a container_name (replicas would collide)');
  if ('ports' in worker) problems.push('worker publishes ports (replicas would collide on the host port)');
  if ('hostname' in worker) problems.push('worker has a fixed hostname');
  if (worker.network_mode === 'host') problems.push('worker uses the host network');
  const workerEnv = environmentOf(worker);
  if (workerEnv.get('DPT_CONNECT') !== `ws://coordinator:${COORDINATOR_PORT}`) {
    problems.push(`worker DPT_CONNECT is ${workerEnv.get('DPT_CONNECT')}, not ws://coordinator:${COORDINATOR_PORT} (the service name)`);
  }
  const dependsOn = worker.depends_on;
  const onCoordinator = isRecord(dependsOn) ? dependsOn.coordinator : undefined;
  if (!isRecord(onCoordinator) || onCoordinator.condition !== 'service_healthy')
    problems.push('worker does not depend on coordinator with condition service_healthy');
  const workerDeploy = isRecord(worker.deploy) ? worker.deploy : {};
  if (workerDeploy.replicas === undefined) problems.push('worker has no deploy.replicas (Swarm)');
  const workerPolicy = isRecord(workerDeploy.restart_policy) ? workerDeploy.restart_policy : {};
  if (workerPolicy.condition !== 'on-failure') problems.push('worker deploy.restart_policy.condition is not on-failure');
  // `always` or `unless-stopped` would restart a worker that exited 0 after training, forever.
  if (typeof worker.restart !== 'string' || !/^on-failure(:\d+)?$/.test(worker.restart))
    problems.push(`worker restart is ${String(worker.restart)}, not on-failure`);
  if ('build' in worker) problems.push('worker has a build section (the coordinator builds the one shared image)');
  if (worker.image === undefined || worker.image !== coordinator.image) problems.push('worker and coordinator do not run the same image');
  // Issue #14: a worker without `build:` and without a pull policy makes `docker compose up --build`
  // pull dpt:latest from a registry; the coordinator's build makes the image both run.
  if (worker.pull_policy !== 'never')
    problems.push(`worker pull_policy is ${String(worker.pull_policy)}, not never (Compose would pull the image from a registry)`);
  if (!('build' in coordinator)) problems.push('coordinator has no build section (nothing makes the image the workers run)');

  // The coordinator: one instance, healthy when it serves /healthz, never restarted after it finished.
  if ('scale' in coordinator) problems.push('coordinator has a scale');
  const coordinatorDeploy = isRecord(coordinator.deploy) ? coordinator.deploy : {};
  if (coordinatorDeploy.replicas !== undefined && coordinatorDeploy.replicas !== 1) problems.push('coordinator deploy.replicas is not 1');
  const coordinatorPolicy = isRecord(coordinatorDeploy.restart_policy) ? coordinatorDeploy.restart_policy : {};
  if (coordinatorPolicy.condition === undefined || coordinatorPolicy.condition === 'any') {
    problems.push('coordinator deploy.restart_policy would restart a finished run (Swarm defaults to any)');
  }
  const healthTest = isRecord(coordinator.healthcheck) ? coordinator.healthcheck.test : undefined;
  if (!Array.isArray(healthTest) || !healthTest.join(' ').includes(`:${COORDINATOR_PORT}/healthz`))
    problems.push('coordinator healthcheck does not GET /healthz');
  if (!publishedPorts(coordinator).some((port) => port.target === String(COORDINATOR_PORT))) {
    problems.push(`coordinator does not publish container port ${COORDINATOR_PORT}`);
  }
  const coordinatorEnv = environmentOf(coordinator);
  if (coordinatorEnv.get('DPT_PORT') !== String(COORDINATOR_PORT)) problems.push(`coordinator DPT_PORT is not ${COORDINATOR_PORT}`);
  if (coordinatorEnv.get('DPT_HOST') !== '0.0.0.0') problems.push('coordinator does not listen on 0.0.0.0');
  for (const flag of TRAINING_FLAGS) {
    const match = INTERPOLATED_WITH_DEFAULT.exec(coordinatorEnv.get(flag) ?? '');
    if (match?.[1] !== flag) problems.push(`coordinator ${flag} is not \${${flag}:-default}`);
  }
  const volumes = (svc: Doc): string[] => (Array.isArray(svc.volumes) ? svc.volumes.map((v) => (isRecord(v) ? `${v.source}:${v.target}` : String(v))) : []);
  if (!volumes(coordinator).some((v) => /:\/data(:ro)?$/.test(v))) problems.push('coordinator has no /data mount');
  if (!volumes(coordinator).some((v) => /^output:\/output$/.test(v))) problems.push('coordinator writes no output volume at /output');
  if (!(coordinatorEnv.get('DPT_OUT') ?? '').startsWith('/output/') || !(coordinatorEnv.get('DPT_METRICS') ?? '').startsWith('/output/')) {
    problems.push('the model or the metrics are not written to /output');
  }
  // Data without copies (issue #11): workers read their rows from the coordinator's GET /data, so
  // the shipped file gives them no data mount and a Swarm across hosts needs no shared storage.
  if (volumes(worker).some((v) => /:\/data(:ro)?$/.test(v))) problems.push('worker mounts /data (workers read the data from the coordinator)');
  if (environmentOf(worker).has('DPT_WORKER_DATA')) problems.push('worker sets DPT_WORKER_DATA (workers read the data from the coordinator)');

  // The token: from a file secret, never written into the compose file.
  for (const [name, svc] of [
    ['coordinator', coordinator],
    ['worker', worker],
  ] as const) {
    const env = environmentOf(svc);
    if (env.has('DPT_TOKEN')) problems.push(`${name} sets DPT_TOKEN in the compose file`);
    if (env.get('DPT_TOKEN_FILE') !== SECRET_TARGET) problems.push(`${name} DPT_TOKEN_FILE is not ${SECRET_TARGET}`);
    if (!secretsOf(svc).includes('dpt_token')) problems.push(`${name} does not mount the dpt_token secret`);
    if (JSON.stringify(svc.command ?? '').includes('--token')) problems.push(`${name} passes a token on the command line`);
  }
  const secrets = isRecord(doc.secrets) ? doc.secrets : {};
  const tokenSecret = isRecord(secrets.dpt_token) ? secrets.dpt_token : {};
  if (typeof tokenSecret.file !== 'string') problems.push('the dpt_token secret is not file-based');
  if (/DPT_TOKEN\s*[:=]/.test(text) || /--token[ =]/.test(text)) problems.push('a token is written into the compose file');
  return problems;
}

function compileComposeSchema(): (doc: unknown) => string[] {
  const require = createRequire(import.meta.url);
  const schemaPath = join(dirname(require.resolve('dclint/package.json')), 'schemas', 'compose.schema.json');
  const schema = JSON.parse(readFileSync(schemaPath, 'utf8')) as Doc;
  // It names the draft-07 meta-schema by its https URL, which ajv does not register.
  delete schema.$schema;
  const ajv = new Ajv({ allErrors: true, strict: false });
  addFormatsModule.default(ajv);
  const validate = ajv.compile(schema);
  return (doc) => {
    if (validate(doc)) return [];
    return (validate.errors ?? []).map((e) => {
      const extra = isRecord(e.params) && typeof e.params.additionalProperty === 'string' ? ` (${e.params.additionalProperty})` : '';
      return `${e.instancePath || '/'} ${e.message ?? ''}${extra}`;
    });
  };
}

/** A fresh copy of the shipped files as docker compose merges them, with `mutate` applied. */
function mutated(mutate: (doc: Doc) => void): Doc {
  const doc = mergeCompose(loadCompose(COMPOSE_TEXT), loadCompose(OVERRIDE_TEXT));
  mutate(doc);
  return doc;
}

describe('docker-compose.yml', () => {
  const validate = compileComposeSchema();
  const base = loadCompose(COMPOSE_TEXT);
  const override = loadCompose(OVERRIDE_TEXT);
  const doc = mergeCompose(base, override);

  it('is valid against the compose specification schema, with and without the override', () => {
    expect(validate(base)).toEqual([]);
    expect(validate(override)).toEqual([]);
    expect(validate(doc)).toEqual([]);
  });

  it('keeps every cluster rule, as docker compose loads it (with the override)', () => {
    expect(clusterProblems(doc, COMPOSE_TEXT + OVERRIDE_TEXT)).toEqual([]);
  });

  it('stays loadable by docker stack deploy on its own', () => {
    expect(swarmProblems(base)).toEqual([]);
    // Without the override the workers still start after the coordinator (and retry until it listens).
    expect(dependsOnMapping(service(base, 'worker').depends_on)).toEqual({ coordinator: { condition: 'service_started' } });
  });

  it('has an override that only makes the workers wait for a healthy coordinator and never pull their image', () => {
    expect(override).toEqual({ services: { worker: { pull_policy: 'never', depends_on: { coordinator: { condition: 'service_healthy' } } } } });
  });

  it('builds the one image on the coordinator and never pulls it for the workers (docker compose up --build needs no registry)', () => {
    expect(service(doc, 'worker').pull_policy).toBe('never');
    expect(service(doc, 'worker').build).toBeUndefined();
    expect(service(doc, 'coordinator').build).toBe('.');
    expect(service(doc, 'worker').image).toBe(service(doc, 'coordinator').image);
  });

  it('does not contain the token of this checkout', () => {
    let token = '';
    try {
      token = readFileSync(join(REPO, 'secrets', 'dpt_token'), 'utf8').trim();
    } catch {
      // No token file in this checkout: nothing of it can have leaked.
    }
    if (token !== '') expect(COMPOSE_TEXT).not.toContain(token);
    expect(COMPOSE_TEXT).toMatch(/file: \.\/secrets\/dpt_token/);
  });

  it('rejects an unknown service key by schema', () => {
    const bad = mutated((d) => {
      service(d, 'coordinator').portz = ['8787:8787'];
    });
    expect(validate(bad)).toContain('/services/coordinator must NOT have additional properties (portz)');
  });

  it('rejects depends_on of the wrong shape by schema', () => {
    const bad = mutated((d) => {
      service(d, 'worker').depends_on = 'coordinator';
    });
    expect(validate(bad).join('\n')).toMatch(/\/services\/worker\/depends_on/);
  });

  it.each<[string, (d: Doc) => void, RegExp]>([
    [
      'a container_name on the worker',
      (d) => {
        service(d, 'worker').container_name = 'dpt-worker';
      },
      /worker has a container_name/,
    ],
    [
      'a fixed host port on the worker',
      (d) => {
        service(d, 'worker').ports = ['8787:8787'];
      },
      /worker publishes ports/,
    ],
    [
      'a worker that connects to localhost',
      (d) => {
        (service(d, 'worker').environment as Doc).DPT_CONNECT = 'ws://localhost:8787';
      },
      /worker DPT_CONNECT is ws:\/\/localhost:8787/,
    ],
    [
      'a worker that starts before the coordinator is healthy',
      (d) => {
        service(d, 'worker').depends_on = ['coordinator'];
      },
      /condition service_healthy/,
    ],
    [
      'a worker without deploy.replicas',
      (d) => {
        delete (service(d, 'worker').deploy as Doc).replicas;
      },
      /no deploy\.replicas/,
    ],
    [
      'a worker that restarts after a clean exit',
      (d) => {
        service(d, 'worker').restart = 'always';
      },
      /worker restart is always/,
    ],
    [
      'a worker that needs the data mounted on its host',
      (d) => {
        service(d, 'worker').volumes = ['./data:/data:ro'];
      },
      /worker mounts \/data/,
    ],
    [
      'a worker pointed at a local copy',
      (d) => {
        (service(d, 'worker').environment as Doc).DPT_WORKER_DATA = '/data/breast_cancer.csv';
      },
      /worker sets DPT_WORKER_DATA/,
    ],
    [
      'a worker that Compose would pull from a registry',
      (d) => {
        delete service(d, 'worker').pull_policy;
      },
      /worker pull_policy is undefined, not never/,
    ],
    [
      'a worker that pulls missing images',
      (d) => {
        service(d, 'worker').pull_policy = 'missing';
      },
      /worker pull_policy is missing, not never/,
    ],
    [
      'no service that builds the image',
      (d) => {
        delete service(d, 'coordinator').build;
      },
      /coordinator has no build section/,
    ],
    [
      'a coordinator that Swarm would restart after it finished',
      (d) => {
        delete (service(d, 'coordinator').deploy as Doc).restart_policy;
      },
      /would restart a finished run/,
    ],
    [
      'a token written into the environment',
      (d) => {
        (service(d, 'worker').environment as Doc).DPT_TOKEN = 'hunter2';
      },
      /worker sets DPT_TOKEN in the compose file/,
    ],
    [
      'a training flag without a default from the environment',
      (d) => {
        (service(d, 'coordinator').environment as Doc).DPT_EPOCHS = 30;
      },
      /coordinator DPT_EPOCHS is not \$\{DPT_EPOCHS:-default\}/,
    ],
  ])('detects %s', (_name, mutate, problem) => {
    const bad = mutated(mutate);
    expect(clusterProblems(bad, COMPOSE_TEXT).join('\n')).toMatch(problem);
  });

  it.each<[string, (d: Doc) => void, RegExp]>([
    [
      'a top-level name',
      (d) => {
        d.name = 'dpt';
      },
      /top-level name/,
    ],
    [
      'depends_on in the long form',
      (d) => {
        service(d, 'worker').depends_on = { coordinator: { condition: 'service_healthy' } };
      },
      /worker: depends_on in the long form/,
    ],
    [
      'a pull_policy in the main file',
      (d) => {
        service(d, 'worker').pull_policy = 'never';
      },
      /worker: pull_policy/,
    ],
    [
      'a dnsrr coordinator with an ingress port',
      (d) => {
        service(d, 'coordinator').ports = ['8787:8787'];
      },
      /coordinator: endpoint_mode dnsrr with an ingress port/,
    ],
  ])('detects what docker stack deploy cannot take: %s', (_name, mutate, problem) => {
    const bad = loadCompose(COMPOSE_TEXT);
    mutate(bad);
    expect(swarmProblems(bad).join('\n')).toMatch(problem);
  });

  it('detects a token written literally into the text', () => {
    const text = COMPOSE_TEXT.replace('DPT_TOKEN_FILE: /run/secrets/dpt_token', 'DPT_TOKEN: hunter2');
    expect(clusterProblems(loadCompose(text), text)).toContain('a token is written into the compose file');
  });

  it('reads the environment in both the mapping and the list form', () => {
    const bad = mutated((d) => {
      service(d, 'worker').environment = ['DPT_CONNECT=ws://coordinator:8787', 'DPT_TOKEN_FILE=/run/secrets/dpt_token', 'DPT_TOKEN=hunter2'];
    });
    expect(clusterProblems(bad, COMPOSE_TEXT)).toEqual(['worker sets DPT_TOKEN in the compose file']);
  });
});

describe('Dockerfile', () => {
  const stages = DOCKERFILE.split('\n').filter((line) => /^FROM /.test(line));
  const runtime = DOCKERFILE.slice(DOCKERFILE.lastIndexOf('\nFROM '));

  it('builds in one stage and runs from a slim Node LTS image in another', () => {
    expect(stages.length).toBeGreaterThanOrEqual(2);
    for (const line of stages) expect(line).toMatch(/^FROM node:(20|22|24)-slim\b/);
    expect(DOCKERFILE).toMatch(/RUN npm ci\b/);
    expect(DOCKERFILE).toMatch(/RUN npm run build/);
    expect(runtime).toMatch(/npm ci --omit=dev/);
    expect(runtime).toMatch(/COPY --from=build \/app\/dist/);
  });

  it('runs as a non-root user with the dpt CLI as entrypoint', () => {
    expect(runtime).toMatch(/^USER (?!root\b|0\b)\S+/m);
    expect(runtime).toContain('ENTRYPOINT ["node", "/app/dist/cli/main.js"]');
  });

  it('bakes no token into the image', () => {
    expect(DOCKERFILE).not.toMatch(/DPT_TOKEN|secrets\//);
    const ignored = readFileSync(join(REPO, '.dockerignore'), 'utf8').split('\n');
    expect(ignored).toContain('secrets');
  });
});
