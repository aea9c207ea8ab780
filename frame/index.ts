// Placeholder entry until the <peerdock-job> component lands.
export {};
