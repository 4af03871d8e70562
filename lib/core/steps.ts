// An endpoint as a list of named steps (as in node-oidc-provider's token action): each step reads
// what the steps before it found and adds what it finds under its own name, typed.

export type Step<S, O> = (state: S) => O | Promise<O>;

interface NamedStep {
  readonly name: string;
  readonly run: (state: never) => unknown;
}

/** Steps from an initial state `I` to a state `S`. Immutable: `then()` returns a longer list. */
export class Steps<I extends object, S extends object = I> {
  readonly #steps: readonly NamedStep[];

  constructor(steps: readonly NamedStep[] = []) {
    this.#steps = steps;
  }

  /** The step names in order, for documentation and tests. */
  get names(): readonly string[] {
    return this.#steps.map((step) => step.name);
  }

  then<K extends string, O>(name: K, run: Step<S, O>): Steps<I, S & { readonly [P in K]: Awaited<O> }> {
    return new Steps([...this.#steps, { name, run: run as NamedStep['run'] }]);
  }

  /** Runs the steps on `state`, adding to it; a step that is synchronous costs no tick. */
  run(state: I): Promise<S> {
    const steps = this.#steps;
    const found = state as Record<string, unknown>;
    let index = 0;
    const advance = (): S | Promise<S> => {
      while (index < steps.length) {
        const step = steps[index++]!;
        const result = (step.run as (state: unknown) => unknown)(found);
        if (result instanceof Promise) {
          return result.then((value: unknown) => {
            found[step.name] = value;
            return advance();
          });
        }
        found[step.name] = result;
      }
      return found as S;
    };
    try {
      return Promise.resolve(advance());
    } catch (error) {
      return Promise.reject(error);
    }
  }
}
