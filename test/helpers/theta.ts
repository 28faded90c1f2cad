// θ = [w, b], the parameter vector of a logistic model (shared/model-shape.ts), for step and pass messages in tests.

export function thetaOf(w: ArrayLike<number>, b: number): Float64Array {
  const theta = new Float64Array(w.length + 1);
  theta.set(w);
  theta[w.length] = b;
  return theta;
}
