export { compileReduceTree, type ReduceNode, type Strategy, type CompileOptions } from './compile.ts';
export { reduce, compileReduction, reductionOf, reduceAt, type Reduction } from './reduce.ts';
