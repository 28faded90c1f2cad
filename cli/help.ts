// The conventions of every command's --help (issue #14 item 5): required options are named in the
// usage line and marked "(required)" in the option list, and each command ends with an Examples
// section. Applied once to the whole command tree after it is built, so a command added later
// gets the same treatment (and test/integration/help.test.ts fails until it has examples).

import { type Command, Help, type Option } from 'commander';

/**
 * Example command lines by command path ('' is dpt itself, 'data convert' a subcommand). Paths
 * are relative to a checkout (data/ is the bundled data); each line is one shell command.
 */
export const EXAMPLES: Readonly<Record<string, readonly string[]>> = {
  '': [
    'dpt train --data data/breast_cancer.csv --workers 2 --epochs 30 --out model.json',
    'dpt evaluate --model model.json --data data/breast_cancer.csv',
    'dpt train --help                  # every training flag',
  ],
  train: [
    'dpt train --data data/breast_cancer.csv --workers 2 --epochs 30 --lr 0.1 --val-split 0.2 --out model.json',
    'dpt train --data data/digits.csv --workers 3 --epochs 20 --batch-size 128 --optimizer adam --lr 0.01 --out digits.json',
    'dpt train --data big.csv.gz --workers 4 --checkpoint run.ckpt --metrics metrics.jsonl --out model.json',
    'dpt train --data big.dpt --workers 4 --monitor-token watch-me   # dashboard: the printed URL',
  ],
  coordinator: [
    'dpt coordinator --data data/breast_cancer.csv --workers 3 --token-file secrets/dpt_token --out model.json',
    'dpt coordinator --data big.dpt --port 8787 --workers 8 --min-workers 4 --token s3cret --checkpoint run.ckpt --out model.json',
  ],
  worker: [
    'dpt worker --connect ws://coordinator-host:8787 --token-file secrets/dpt_token',
    'dpt worker --connect ws://relay-a:8788,ws://coordinator-host:8787 --token s3cret --data /mnt/big.dpt --threads 2',
  ],
  monitor: ['dpt monitor http://coordinator-host:8787 --token-file monitor.token', 'dpt monitor ws://127.0.0.1:8787 --token s3cret --json > events.jsonl'],
  predict: [
    'dpt predict --model model.json --data data/breast_cancer.csv --out predictions.csv',
    'dpt predict --model model.json --data new.csv.gz     # CSV on stdout',
  ],
  evaluate: ['dpt evaluate --model model.json --data data/breast_cancer.csv', 'dpt evaluate --model digits.json --data digits.dpt --json'],
  export: ['dpt export --format onnx model.json model.onnx', 'dpt export model.json model64.onnx --precision float64'],
  relay: ['dpt relay --connect ws://coordinator-host:8787 --port 8788 --token s3cret'],
  data: ['dpt data convert big.csv.gz big.dpt', 'dpt data generate --rows 100000 --features 10 --out synthetic.dpt', 'dpt data info big.dpt --verify'],
  'data convert': [
    'dpt data convert big.csv.gz big.dpt',
    'dpt data convert data/digits.csv digits.dpt --label-column digit',
    'dpt data convert news.svm news.dpt              # LIBSVM to a sparse .dpt',
    'dpt data convert flights_3m_cat.csv.gz flights.dpt --hash-bits 22 --categorical dow,month,origin,destination,dep_hour --cross origin:destination',
  ],
  'data generate': ['dpt data generate --rows 100000 --features 10 --seed 7 --out synthetic.dpt', 'dpt data generate --rows 1000 --features 5 --out small.csv'],
  'data info': [
    'dpt data info synthetic.dpt',
    'dpt data info big.dpt --verify --json',
    'dpt data info flights.dpt      # sparse: non-zeros per row, density, hashing',
  ],
};

/** Marks required options and adds the examples to `program` and every command below it. */
export function applyHelpConventions(program: Command): void {
  for (const { command, path } of commandTree(program, '')) {
    command.configureHelp({ optionDescription: describeOption });
    // The usage line shows the required flags, as a man page's synopsis does: `dpt predict --model <path> --data <path> [options]`.
    const required = command.options.filter((option) => option.mandatory).map((option) => option.flags.replace(/^-\w, /, ''));
    if (required.length > 0) command.usage(`${required.join(' ')} ${command.usage()}`);
    const examples = EXAMPLES[path];
    if (examples !== undefined) command.addHelpText('after', `\nExamples:\n${examples.map((line) => `  $ ${line}`).join('\n')}\n`);
  }
}

/** Every command of the tree with its path of names below the root ('' for the root). */
export function commandTree(root: Command, path: string): { command: Command; path: string }[] {
  const below = root.commands.filter((command) => command.name() !== 'help');
  return [{ command: root, path }, ...below.flatMap((command) => commandTree(command, path === '' ? command.name() : `${path} ${command.name()}`))];
}

/** Commander's description of an option, "(required)" first when the option must be given (as a flag or its environment variable). */
function describeOption(this: Help, option: Option): string {
  const text = Help.prototype.optionDescription.call(this, option);
  return option.mandatory ? `(required) ${text}` : text;
}
