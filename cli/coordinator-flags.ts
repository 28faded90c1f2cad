// The training flags that `dpt train` and `dpt coordinator` share, built from the options table
// (coordinator/options-table.ts: flag, help, parser, default, where the value goes), and their
// mapping to the coordinator's options. Each command adds its own flags (--workers, …) in main.ts.

import { type Command, Option } from 'commander';
import type { CoordinatorOptions } from '../coordinator/config.js';
import { optionEnvVar, TRAINING_OPTIONS, tableOptions } from '../coordinator/options-table.js';
import { forCommander, resolveToken } from './options.js';

/**
 * The parsed flags (by commander's property names): the table's values plus each command's own
 * flags. Named here: those read outside the table (the token, the files checked before a run).
 */
export interface TrainingFlags {
  readonly [property: string]: unknown;
  data: string;
  token?: string;
  tokenFile?: string;
  out?: string;
  metrics?: string;
  checkpoint?: string;
  resume?: string;
  tlsCert?: string;
  tlsKey?: string;
  workers: number;
  verbose?: boolean;
}

export function addTrainingFlags(command: Command, defaults: { host: string; port: number }): Command {
  // Every flag can also come from the environment (DPT_ + the flag in upper snake case), which
  // is how docker-compose passes training settings; a flag on the command line wins.
  for (const row of TRAINING_OPTIONS) {
    const option = new Option(row.value === null ? row.flag : `${row.flag} ${row.value}`, row.help);
    const envVar = optionEnvVar(row.flag);
    if (envVar !== null) option.env(envVar);
    if (row.parse !== null) option.argParser(forCommander(row.parse));
    if (row.default !== undefined) option.default(typeof row.default === 'object' ? defaults[row.default.perCommand] : row.default);
    if (row.isMandatory === true) option.makeOptionMandatory();
    command.addOption(option);
  }
  // Display only (not in the table: it sets no option of the run, so no config field, no fingerprint).
  for (const flag of DISPLAY_FLAGS) command.addOption(new Option(flag, DISPLAY_FLAG_HELP[flag]));
  return command;
}

/** Flags that change only what this process prints, added beside the table's. */
export const DISPLAY_FLAGS = ['--verbose'] as const;
const DISPLAY_FLAG_HELP: Readonly<Record<(typeof DISPLAY_FLAGS)[number], string>> = {
  '--verbose': 'log each backup task (straggling chunks also given to idle workers); default: a count per epoch',
};

export function coordinatorOptions(flags: TrainingFlags): CoordinatorOptions {
  return {
    ...tableOptions(flags),
    dataPath: flags.data,
    // Combined, and read from a file: --token wins over --token-file.
    token: resolveToken(flags.token, flags.tokenFile),
    workers: flags.workers,
  };
}
