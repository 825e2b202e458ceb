//! Rendering the generated files from templates (to be written).
