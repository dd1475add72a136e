// Form fields that show the API's validation error on the field it names (ApiCallError.field),
// and the rest of the error above the form.
import { FormGroup, FormHelperText, HelperText, HelperTextItem, TextInput } from "@patternfly/react-core";
import type { ApiCallError } from "../api/client.ts";

/** The error for `field` when the API named it (proto names are snake_case; the UI's camelCase). */
export function fieldError(err: ApiCallError | undefined, field: string): string | undefined {
  if (!err?.field) return undefined;
  const snake = field.replace(/[A-Z]/g, (c) => `_${c.toLowerCase()}`);
  // On the field itself the API's `field "username": ` prefix only repeats the label.
  return err.field === field || err.field === snake ? err.message.replace(/^field "[^"]*":\s*/, "") : undefined;
}

interface TextFieldProps {
  id: string;
  label: string;
  value: string;
  onChange(value: string): void;
  type?: "text" | "password";
  error?: string;
  hint?: string;
  autoComplete?: string;
  autoFocus?: boolean;
  isRequired?: boolean;
}

export function TextField(p: TextFieldProps) {
  return (
    <FormGroup label={p.label} fieldId={p.id} isRequired={p.isRequired}>
      <TextInput
        id={p.id} name={p.id} type={p.type ?? "text"} value={p.value} autoComplete={p.autoComplete} autoFocus={p.autoFocus}
        isRequired={p.isRequired} validated={p.error ? "error" : "default"} onChange={(_e, v) => p.onChange(v)}
        aria-describedby={p.error || p.hint ? `${p.id}-helper` : undefined}
      />
      {(p.error || p.hint) && (
        <FormHelperText>
          <HelperText id={`${p.id}-helper`}>
            <HelperTextItem variant={p.error ? "error" : "default"}>{p.error ?? p.hint}</HelperTextItem>
          </HelperText>
        </FormHelperText>
      )}
    </FormGroup>
  );
}
