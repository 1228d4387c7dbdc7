export * from './define-plugin';
export * from './tokens';
export * from './kernel-options';
export * from './pin-strategy';
export * from './kernel';
export * from './create-kernel';
