import { describe, expect, it } from 'vitest';
import { assembleModule, type ModuleSource } from '../../shared/wasm-assembler.js';

// @types/node 20 does not declare the WebAssembly global; a local view of what this test uses.
const wasm = (
  globalThis as unknown as {
    WebAssembly: {
      Module: new (bytes: Uint8Array) => object;
      Memory: new (descriptor: { initial: number; maximum: number }) => object;
      Instance: new (module: object, imports: object) => { exports: Record<string, unknown> };
    };
  }
).WebAssembly;

const memory = { module: 'env', field: 'memory', minPages: 1, maxPages: 1, shared: false } as const;

function module(body: string): ModuleSource {
  return { memory, imports: [], functions: [{ name: '$f', export: 'f', params: [['$n', 'i32']], results: ['f64'], locals: [['$sum', 'f64']], body }] };
}

describe('assembleModule', () => {
  it('assembles labelled loops, constants and locals into a module that runs', () => {
    // Σ_{k=1..n} k·0.5, counting n down to 0.
    const bytes = assembleModule(
      module(`
      block $done
        loop $next
          local.get $n i32.eqz br_if $done
          local.get $sum local.get $n f64.convert_i32_u f64.const 0.5 f64.mul f64.add local.set $sum
          local.get $n i32.const 1 i32.sub local.set $n
          br $next
        end
      end
      local.get $sum
    end`),
    );
    const instance = new wasm.Instance(new wasm.Module(bytes), { env: { memory: new wasm.Memory({ initial: 1, maximum: 1 }) } });
    expect((instance.exports.f as (n: number) => number)(10)).toBe(27.5);
  });

  it.each([
    ['an unknown instruction', 'f64.frobnicate end', /function \$f, at 'f64\.frobnicate': unknown instruction/],
    ['an unknown local', 'local.get $nope end', /unknown local/],
    ['a branch to no enclosing block', 'br $outer end', /no enclosing block/],
    ['a block left open', 'block $b f64.const 1', /left open/],
  ])('rejects %s, naming the function and the token', (_name, body, message) => {
    expect(() => assembleModule(module(body))).toThrow(message);
  });
});
