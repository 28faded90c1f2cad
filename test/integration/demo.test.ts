// `npm start`, the README's demo, trains the bundled breast-cancer data to accuracy >= 0.97.

import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { REPO } from '../helpers/cli.js';

describe('npm start', () => {
  it('trains the demo with 2 workers to a training accuracy of at least 0.97', () => {
    const result = spawnSync('npm', ['start', '--silent'], { cwd: REPO, encoding: 'utf8', timeout: 120_000, killSignal: 'SIGKILL' });
    expect(result.status, result.stderr).toBe(0);
    const epochs = result.stdout.split('\n').filter((line) => /^epoch \d+\/\d+ .* train acc /.test(line));
    expect(epochs.length).toBeGreaterThan(1);
    const accuracy = Number(/train accuracy (\d\.\d+)/.exec(result.stdout)?.[1]);
    expect(accuracy).toBeGreaterThanOrEqual(0.97);
    // The model file agrees with what was printed.
    type Model = { metrics: { trainAccuracy: number }; weights: number[]; bias: number; standardization: { mean: number[]; std: number[] } };
    const model = JSON.parse(readFileSync(join(REPO, 'model.json'), 'utf8')) as Model;
    expect(model.weights).toHaveLength(30);
    expect(model.metrics.trainAccuracy).toBeCloseTo(accuracy, 4);
    // Independently: the model applied to every row of the file (train and validation) in float64.
    const lines = readFileSync(join(REPO, 'data', 'breast_cancer.csv'), 'utf8')
      .trim()
      .split('\n')
      .slice(1);
    let correct = 0;
    for (const line of lines) {
      const cells = line.split(',').map(Number);
      const label = cells.pop();
      const z = cells.reduce(
        (sum, v, j) => sum + (model.weights[j] as number) * ((v - (model.standardization.mean[j] as number)) / (model.standardization.std[j] as number)),
        model.bias,
      );
      if ((z > 0 ? 1 : 0) === label) correct++;
    }
    expect(correct / lines.length).toBeGreaterThanOrEqual(0.97);
  });
});
